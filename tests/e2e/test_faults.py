"""Faults through the real runtime: processes killed with SIGKILL at the worst moments.

- A function killed between its change and the change's event: the event was written in the
  change's transaction (the outbox), and the relay schedule publishes it, so the other contexts
  still learn of the device and of the deleted user.
- Consumer workers killed mid-batch and the endpoint itself killed (`kill -9`) during an
  ingestion, then the runtime restarted: the hourly totals are exact and each alert is stored once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chalicelib.monitoring.readings import hour_key
from tests.accounts import api, new_admin, new_client, runtime_env
from tests.harness import FAST_HASHING, PROJECT_DIR, RuntimeProcess, endpoint_pids, wait_for
from tests.sockets import expected_hours, send_readings, stored_hours

UTC = dt.UTC

# Runs in a process of its own as the app's code runs in a function, and dies (SIGKILL) at the
# moment its change is committed and its event is about to be published.
KILLED_WRITER = """
import os, signal, sys
from chalicelib.platform import publisher

def die(self, topic, events):
    print("committed; dying before the publish", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

publisher.SnsPublisher.publish = die
kind, target = sys.argv[1], sys.argv[2]
if kind == "device":
    from chalicelib.devices.models import CreateDeviceRequest
    from chalicelib.devices.service import DeviceService
    DeviceService(user_exists=lambda user_id: True).create(
        CreateDeviceRequest(id=target, name="Killed writer", max_hourly_kwh=1.0, owner_ids=sys.argv[3:]))
else:
    from chalicelib.identity.service import IdentityService
    IdentityService().delete_user(target)
print("not reached", flush=True)
"""


@pytest.fixture(scope="module")
def relaying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """A runtime whose schedules run 60 times faster (the relay every second), grace 2 s."""
    process = RuntimeProcess(
        tmp_path_factory.mktemp("relaying"),
        extra_args=["--schedule-time-scale", "60", "--visibility-timeout", "2",
                    "--frontend-dir", str(tmp_path_factory.mktemp("no-frontend"))],
        env={**FAST_HASHING, "EMS_OUTBOX_GRACE_S": "2"},
    ).start()
    yield process
    assert process.stop() == 0, process.output


def kill_a_writer(runtime: RuntimeProcess, *args: str) -> None:
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, *args], cwd=PROJECT_DIR, env=runtime_env(runtime),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stdout, done.stderr)
    assert "dying before the publish" in done.stdout and "not reached" not in done.stdout


def staged(runtime: RuntimeProcess, topic: str) -> list[dict[str, Any]]:
    items = runtime.client("dynamodb").query(
        TableName=runtime.name("outbox"), KeyConditionExpression="topic = :t", ConsistentRead=True,
        ExpressionAttributeValues={":t": {"S": topic}})["Items"]
    return [json.loads(item["message"]["S"]) for item in items]


def replica(runtime: RuntimeProcess, device_id: str) -> dict[str, Any] | None:
    return runtime.client("dynamodb").get_item(  # type: ignore[no-any-return]
        TableName=runtime.name("meters"), Key={"device_id": {"S": device_id}}, ConsistentRead=True).get("Item")


def test_a_device_whose_writer_died_before_its_event_still_reaches_monitoring(relaying: RuntimeProcess) -> None:
    # Given a device created by a function killed between the commit and the publish
    device_id = f"killed-{uuid.uuid4().hex[:8]}"
    kill_a_writer(relaying, "device", device_id)
    admin = new_admin(relaying)
    assert api(relaying, "GET", f"/devices/{device_id}", admin).status_code == 200
    # Then the relay publishes its event from the outbox, and monitoring learns of the device
    wait_for(lambda: replica(relaying, device_id), timeout_s=30, what="the device in monitoring's replica")
    wait_for(lambda: not [e for e in staged(relaying, "devices-events") if e["entity_id"] == device_id],
             what="the outbox emptied")
    # And its readings are counted, not dead-lettered as coming from an unknown meter
    now = dt.datetime.now(UTC).replace(microsecond=0)
    send_readings(relaying, [{"device_id": device_id, "timestamp": now.isoformat(), "measurement_value": 0.25}])
    wait_for(lambda: stored_hours(relaying, device_id) == {hour_key(now): Decimal("0.25")}, timeout_s=30,
             what="the reading counted")


def test_a_user_deletion_whose_writer_died_before_its_event_still_removes_their_ownerships(
    relaying: RuntimeProcess,
) -> None:
    # Given a client owning a device, deleted by a function killed between the commit and the publish
    admin = new_admin(relaying)
    client = new_client(relaying)
    device_id = f"owned-{uuid.uuid4().hex[:8]}"
    body = {"id": device_id, "name": "Owned", "max_hourly_kwh": 1.0, "owner_ids": [client.id]}
    assert api(relaying, "POST", "/devices", admin, json=body).status_code == 201
    kill_a_writer(relaying, "user", client.id)
    assert api(relaying, "GET", f"/users/{client.id}", admin).status_code == 404
    # Then the relay publishes user.deleted and devices removes the ownership
    wait_for(lambda: api(relaying, "GET", f"/devices/{device_id}", admin).json()["owner_ids"] == [], timeout_s=30,
             what="the deleted user's ownership removed")
    assert not [e for e in staged(relaying, "identity-events") if e["entity_id"] == client.id]


# --- kill -9 during an ingestion ------------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def worker_pids(runtime: RuntimeProcess) -> list[int]:
    """The runtime's execution environments: the children of its fork server."""
    assert runtime.process is not None
    servers = [p for p in children(runtime.process.pid)
               if b"forkserver" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return [w for server in servers for w in children(server)]


def queue_depth(runtime: RuntimeProcess) -> int:
    attributes = runtime.client("sqs").get_queue_attributes(
        QueueUrl=runtime.queue_url("readings"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def week_of_readings(device_id: str, start: dt.datetime, rng: random.Random) -> list[dict[str, Any]]:
    return [{"device_id": device_id, "timestamp": (start + dt.timedelta(minutes=10 * i)).isoformat(),
             "measurement_value": round(rng.uniform(0.05, 0.3), 3)} for i in range(7 * 24 * 6)]


def test_workers_and_the_endpoint_killed_mid_ingestion_lose_and_double_nothing(tmp_path: Path) -> None:
    args = ["--save-interval", "1", "--visibility-timeout", "2", "--max-receive-count", "10",
            "--sqs-concurrency", "1", "--frontend-dir", str(tmp_path / "no-frontend")]
    first = RuntimeProcess(tmp_path / "data", extra_args=args, env=FAST_HASHING).start()
    try:
        # Given three meters with a limit some hours cross, and a week of their readings, each sent three times
        admin = new_admin(first)
        rng = random.Random(11)
        start = (dt.datetime.now(UTC) - dt.timedelta(days=8)).replace(minute=0, second=0, microsecond=0)
        devices = [f"fault-{uuid.uuid4().hex[:6]}" for _ in range(3)]
        for device_id in devices:
            body = {"id": device_id, "name": device_id, "max_hourly_kwh": 1.2, "owner_ids": [admin.id]}
            assert api(first, "POST", "/devices", admin, json=body).status_code == 201
        for device_id in devices:
            wait_for(lambda d=device_id: replica(first, d), what="the device in monitoring's replica")
        readings = [r for d in devices for r in week_of_readings(d, start, rng)]
        messages = readings * 3
        rng.shuffle(messages)
        send_readings(first, messages)
        sent_at = time.time()
        # When the consumer's workers are killed mid-batch, twice
        for _ in range(2):
            wait_for(lambda: any(stored_hours(first, d) for d in devices), what="ingestion under way")
            killed = worker_pids(first)
            assert killed
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
            time.sleep(1)
        # And the endpoint is killed (-9) once a save holds every message sent, while ingestion goes on
        saved = tmp_path / "data" / "endpoint" / "sqs.json"
        wait_for(lambda: saved.exists() and saved.stat().st_mtime > sent_at + 0.5, what="a save after the sends")
        assert queue_depth(first) > 0, "ingestion finished before the endpoint could be killed mid-way"
        [endpoint] = endpoint_pids(first.endpoint_port)
        os.kill(endpoint, signal.SIGKILL)
    finally:
        first.stop()
    # And the runtime is started again on the same data
    second = RuntimeProcess(tmp_path / "data", extra_args=args, env=FAST_HASHING, stage=first.stage,
                            ports=(first.rest_port, first.ws_port, first.endpoint_port)).start()
    try:
        # Then every hour's total is exact, and each hour over the limit has exactly one alert
        for device_id in devices:
            expected = expected_hours([r for r in readings if r["device_id"] == device_id])
            wait_for(lambda d=device_id, e=expected: stored_hours(second, d) == e, timeout_s=180,
                     what=f"exact totals of {device_id}")
            over = sorted(h for h, total in expected.items() if total > Decimal("1.2"))
            assert over, "the readings cross no limit: the test would check no alert"
            alerts = second.client("dynamodb").query(
                TableName=second.name("alerts"), IndexName="by_device", KeyConditionExpression="device_id = :d",
                ExpressionAttributeValues={":d": {"S": device_id}})["Items"]
            assert sorted(a["hour_start"]["S"] for a in alerts if a["kind"]["S"] == "over_consumption") == over
        assert queue_depth(second) == 0
        dead = second.client("sqs").get_queue_attributes(QueueUrl=second.queue_url("readings-dlq"),
                                                         AttributeNames=["ApproximateNumberOfMessages"])
        assert dead["Attributes"]["ApproximateNumberOfMessages"] == "0"
    finally:
        assert second.stop() == 0, second.output
