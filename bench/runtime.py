"""The product runtime as the benchmarks use it: on free loopback ports, with accounts and devices.

Each benchmark gets a fresh stage in a fresh data folder, no demo data, no simulator, no
snapshots (they would add endpoint load at random moments), and JSON log lines, which the
benchmarks read: the readings consumer reports what each batch counted and wrote. The frontend
is not served unless a benchmark asks for it (`serve_frontend()`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import boto3
import requests
from botocore.config import Config

from infra.local.endpoint import Credentials, stage_credentials
from tests.harness import PROJECT_DIR, RuntimeProcess, unique_stage

# argon2id at its production size costs 64 MiB and ~0.1 s per hash; sign-ups are set-up here, not measured.
FAST_HASHING = {"EMS_ARGON2_MEMORY_KIB": "1024", "EMS_ARGON2_TIME_COST": "1", "EMS_ARGON2_PARALLELISM": "1",
                "EMS_REGISTER_MAX_PER_SOURCE_HOUR": "100000"}  # the benchmarks sign up fleets from one address
PASSWORD = "bench horse battery 1"
REGION = "us-east-1"
FRONTEND_DIST = PROJECT_DIR / "frontend" / "dist"


class BenchError(Exception):
    """A benchmark could not set up or finish; the message says what and where."""


@dataclass(frozen=True)
class Account:
    """A signed-in user."""

    id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def wait_until(check: Any, timeout_s: float, what: str, interval_s: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; BenchError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise BenchError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


def built_frontend() -> Path:
    """`frontend/dist`; BenchError when it is not built."""
    if not (FRONTEND_DIST / "index.html").is_file():
        raise BenchError(f"{FRONTEND_DIST} is not built: run `make frontend-build` (make bench does it)")
    return FRONTEND_DIST


def powertools_time(stamp: str) -> float | None:
    """Epoch seconds of a Powertools `timestamp` (`2026-11-23 21:10:25,123+0000`)."""
    try:
        return dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f%z").timestamp()
    except (TypeError, ValueError):
        return None


class BenchRuntime:
    """`python -m infra.local` for one benchmark; a context manager that always stops it."""

    def __init__(self, *, sqs_concurrency: int = 2, rest_concurrency: int = 4, label: str = "bench",
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"ems-{label}-"))
        # The gateway reads this folder on every request: empty, it serves no frontend; made a link to
        # the built one (`serve_frontend`), it serves that from then on, without a restart.
        self._frontend_dir = self.data_dir / "frontend"
        self._frontend_dir.mkdir()
        self.sqs_concurrency = sqs_concurrency
        self.process = RuntimeProcess(
            self.data_dir / "state",
            stage=unique_stage("bench"),
            extra_args=[
                # The stage throttle is off: the benchmarks measure the app, not the 429s.
                "--no-demo", "--no-simulator", "--no-persist", "--log-format", "json", "--rest-rate-limit", "0",
                "--sqs-concurrency", str(sqs_concurrency), "--concurrency", str(rest_concurrency),
                "--frontend-dir", str(self._frontend_dir),
            ],
            env={**FAST_HASHING, **(env or {})},
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._admin: Account | None = None

    # --- life -------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.process.start(timeout_s=120)
        except AssertionError as exc:  # the harness reports with assertions
            self.close()
            raise BenchError(f"the runtime did not start: {str(exc)[-2000:]}") from None
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.process.stop(timeout_s=60)
        except AssertionError as exc:
            print(f"warning: the runtime did not stop cleanly: {str(exc)[:300]}", file=sys.stderr)
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def serve_frontend(self) -> None:
        """Serve the built frontend (`frontend/dist`) on `base_url` from now on."""
        served = built_frontend()
        if not self._frontend_dir.is_symlink():
            self._frontend_dir.rmdir()  # removing the link later (close) leaves the build alone
            self._frontend_dir.symlink_to(served, target_is_directory=True)

    # --- addresses ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where a browser opens the app (the host the runtime gives the frontend for the API and sockets)."""
        return f"http://localhost:{self.process.rest_port}"

    @property
    def stage(self) -> str:
        return self.process.stage

    @property
    def rest_url(self) -> str:
        return self.process.rest_url

    @property
    def ws_url(self) -> str:
        return self.process.ws_url

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.process.ws_port}/api/@connections"

    @property
    def endpoint_url(self) -> str:
        return self.process.endpoint_url

    @property
    def endpoint_log(self) -> Path:
        return self.process.data_dir / "endpoint.log"

    def name(self, logical: str) -> str:
        return self.process.name(logical)

    def client(self, service: str) -> Any:
        """A shared client of the endpoint (clients are thread-safe; making them is not)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.own_client(service)
            return self._clients[service]

    def keys(self) -> Credentials:
        """The embedded endpoint's keys (its data folder's)."""
        return stage_credentials(self.process.data_dir)

    def own_client(self, service: str) -> Any:
        """A client of its own, for a thread that must not share a connection pool."""
        keys = stage_credentials(self.process.data_dir)
        return boto3.session.Session(
            region_name=REGION, aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.secret_access_key
        ).client(service, endpoint_url=self.endpoint_url,
                 config=Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=64))

    def queue_url(self, logical: str) -> str:
        return str(self.client("sqs").get_queue_url(QueueName=self.name(logical))["QueueUrl"])

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def wait_drained(self, logicals: tuple[str, ...] = ("readings", "notifications"),
                     timeout_s: float = 600.0) -> float:
        """Wait until these queues hold nothing (in flight included), so the next benchmark starts quiet."""
        urls = [self.queue_url(logical) for logical in logicals]
        started = time.monotonic()
        wait_until(lambda: all(self.queue_depth(url) == 0 for url in urls), timeout_s,
                   f"the {', '.join(logicals)} queues to drain", interval_s=0.5)
        return time.monotonic() - started

    def app_env(self) -> dict[str, str]:
        """The environment the runtime gives the app, for a process run beside it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EMS_", "AWS_"))}
        env.update(FAST_HASHING)
        env.update({
            "AWS_ENDPOINT_URL": self.endpoint_url, "EMS_STAGE": self.stage,
            "EMS_DATA_DIR": str(self.process.data_dir), "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            **stage_credentials(self.process.data_dir).env(),
            "EMS_WEBSOCKET_API_ID": "local", "EMS_WEBSOCKET_STAGE": "api",
            "EMS_WEBSOCKET_MANAGEMENT_URL": f"http://127.0.0.1:{self.process.ws_port}/api",
            "POWERTOOLS_SERVICE_NAME": "ems", "PYTHONUNBUFFERED": "1",
        })
        return env

    # --- the runtime's log --------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the runtime's output; `records(mark)` reads what came after it."""
        return len(self.process.lines)

    def records(self, since: int = 0, message: str | None = None, until: int | None = None
                ) -> Iterator[dict[str, Any]]:
        """The JSON log lines from `since` to `until` (optionally only those with this message)."""
        for line in self.process.lines[since:until]:
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and (message is None or record.get("message") == message):
                yield record

    def follow(self, message: str | None = None) -> LogFollower:
        """Reads the JSON log lines (with this message) written from now on, a few at a time."""
        return LogFollower(self, message)

    def errors(self, since: int = 0) -> list[str]:
        """Error lines after `since` (a benchmark that saw any says so)."""
        return [str(r.get("message")) for r in self.records(since) if r.get("level") == "ERROR"]

    def warnings(self, since: int = 0, limit: int = 50) -> list[str]:
        """Warning lines after `since`, with the error they carry (the first `limit`)."""
        found = [f"{r.get('message')}: {r.get('error') or r.get('reason') or ''}".rstrip(": ")
                 for r in self.records(since) if r.get("level") == "WARNING"]
        return found[:limit]

    def connection_ids(self, user_id: str) -> list[str]:
        """The user's open WebSocket connections, as the app registered them (its presence item)."""
        item = self.client("dynamodb").get_item(TableName=self.name("presence"), Key={"user_id": {"S": user_id}},
                                                ConsistentRead=True).get("Item", {})
        return list(item.get("conns", {}).get("M", {}))

    def post_to_connection(self, session: requests.Session, connection_id: str, data: bytes) -> int:
        """One frame through the management API, as a backend would post it; the status."""
        url = f"{self.management_url}/{quote(connection_id, safe='')}"
        return session.post(url, data=data, timeout=30).status_code

    def socket_url(self, account: Account) -> str:
        return f"{self.ws_url}/?token={account.token}"

    # --- accounts and devices -----------------------------------------------------------------

    def admin(self) -> Account:
        """The stage's first admin, made with the project's command for it (once)."""
        if self._admin is None:
            username = f"admin_{uuid.uuid4().hex[:10]}"
            done = subprocess.run(
                [sys.executable, "-m", "chalicelib.identity", "create-admin", "--username", username,
                 "--password-stdin"],
                input=PASSWORD + "\n", cwd=PROJECT_DIR, env=self.app_env(), capture_output=True, text=True,
                timeout=120, check=False,
            )
            if done.returncode != 0:
                raise BenchError(f"create-admin failed: {done.stderr.strip()[-500:]}")
            self._admin = self.sign_in(username)
        return self._admin

    def sign_in(self, username: str) -> Account:
        response = requests.post(f"{self.rest_url}/auth/login", json={"username": username, "password": PASSWORD},
                                 timeout=30)
        if response.status_code != 200:
            raise BenchError(f"sign-in of {username} failed: {response.status_code} {response.text[:200]}")
        body = response.json()
        return Account(body["user"]["id"], username, body["access_token"])

    def new_client(self, prefix: str = "client") -> Account:
        username = f"{prefix}_{uuid.uuid4().hex[:10]}"
        response = requests.post(f"{self.rest_url}/auth/register",
                                 json={"username": username, "password": PASSWORD}, timeout=30)
        if response.status_code != 201:
            raise BenchError(f"sign-up failed: {response.status_code} {response.text[:200]}")
        return self.sign_in(username)

    def register_users(self, count: int, prefix: str = "household") -> list[str]:
        """`count` clients signed up over REST (four at a time); their ids."""
        def register(_: int) -> str:
            username = f"{prefix}_{uuid.uuid4().hex[:10]}"
            response = requests.post(f"{self.rest_url}/auth/register",
                                     json={"username": username, "password": PASSWORD}, timeout=60)
            if response.status_code != 201:
                raise BenchError(f"sign-up failed: {response.status_code} {response.text[:200]}")
            return str(response.json()["user"]["id"])

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(register, range(count)))

    def create_devices(self, count: int, owner_ids: list[str], limit_kwh: float, prefix: str = "m",
                       timezone: str = "UTC", timeout_s: float = 300.0,
                       owners_by_device: list[list[str]] | None = None,
                       fields: dict[str, Any] | None = None) -> list[str]:
        """`count` devices made by the admin over REST, once monitoring's replica knows them all.

        Each is owned by `owner_ids`, or, with `owners_by_device`, by the owners at its own index;
        `fields` go into every creation's body (e.g. `reading_kind`).
        """
        admin = self.admin()
        run = uuid.uuid4().hex[:6]
        ids = [f"{prefix}-{run}-{i:05d}" for i in range(count)]
        owners = {device_id: owners_by_device[i] if owners_by_device else owner_ids for i, device_id in enumerate(ids)}

        def create(device_id: str) -> None:
            body: dict[str, Any] = {"id": device_id, "name": f"Bench {device_id}", "max_hourly_kwh": limit_kwh,
                    "timezone": timezone, "owner_ids": owners[device_id], **(fields or {})}
            with requests.Session() as session:
                for _attempt in range(3):
                    response = session.post(f"{self.rest_url}/devices", json=body, headers=admin.headers, timeout=60)
                    if response.status_code == 201:
                        return
                    if response.status_code < 500 and response.status_code != 429:
                        break
                    time.sleep(1.0)
            raise BenchError(f"creating {device_id} failed: {response.status_code} {response.text[:200]}")

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(create, ids))
        self.wait_replicated(ids, timeout_s)
        return ids

    def wait_replicated(self, device_ids: list[str], timeout_s: float) -> None:
        """Wait until monitoring's replica (fed through SNS and SQS) holds every device."""
        dynamodb = self.client("dynamodb")
        table = self.name("meters")
        missing = set(device_ids)

        def check() -> bool:
            for start in range(0, len(device_ids), 100):
                wanted = [d for d in device_ids[start:start + 100] if d in missing]
                if not wanted:
                    continue
                found = dynamodb.batch_get_item(RequestItems={table: {
                    "Keys": [{"device_id": {"S": d}} for d in wanted], "ProjectionExpression": "device_id"}})
                for item in found.get("Responses", {}).get(table, []):
                    missing.discard(item["device_id"]["S"])
            return not missing

        wait_until(check, timeout_s, f"{len(device_ids)} devices in monitoring's replica", interval_s=0.5)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a process, from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _role(pid: int, root: int, parents: dict[int, int]) -> str:
    if pid == root:
        return "runtime (gateways, pollers)"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    if "endpoint_server.py" in command:
        return "endpoint (ministack)"
    if "forkserver" in command and "resource_tracker" not in command:
        parent = parents.get(pid)
        parent_command = ""
        if parent is not None:
            try:
                parent_command = Path(f"/proc/{parent}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                pass
        return "functions (workers)" if "forkserver" in parent_command else "fork server"
    return "other"


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _CLOCK_TICKS


class CpuMeter:
    """CPU seconds used by the runtime's processes (by role), this process and the whole machine, over a window."""

    def __init__(self, runtime: BenchRuntime) -> None:
        assert runtime.process.process is not None
        self._root = runtime.process.process.pid
        self._start_wall = time.monotonic()
        self._start = self._sample()
        self._start_self = _stat(os.getpid())
        self._start_machine = machine_busy_s()

    def _sample(self) -> dict[int, tuple[str, float]]:
        stats: dict[int, tuple[int, float]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                found = _stat(int(entry.name))
                if found:
                    stats[int(entry.name)] = found
        parents = {pid: parent for pid, (parent, _) in stats.items()}
        tree = {self._root}
        for _round in range(6):  # runtime -> fork server -> workers; moto is a direct child
            tree |= {pid for pid, parent in parents.items() if parent in tree}
        return {pid: (_role(pid, self._root, parents), stats[pid][1]) for pid in tree if pid in stats}

    def stop(self) -> dict[str, Any]:
        """Cores used on average during the window, by role."""
        wall = max(time.monotonic() - self._start_wall, 1e-6)
        end = self._sample()
        used: dict[str, float] = {}
        for pid, (role, seconds) in end.items():
            before = self._start.get(pid, (role, 0.0))[1]
            used[role] = used.get(role, 0.0) + max(seconds - before, 0.0)
        end_self = _stat(os.getpid())
        bench = (end_self[1] - self._start_self[1]) if end_self and self._start_self else 0.0
        machine = machine_busy_s() - self._start_machine
        ours = sum(used.values()) + bench
        cores = {role: round(seconds / wall, 3) for role, seconds in sorted(used.items())}
        cores["benchmark (producers, clients)"] = round(bench / wall, 3)
        cores["rest of the machine"] = round(max(machine - ours, 0.0) / wall, 3)
        return {"seconds": wall, "cores_used": cores, "machine_cores_busy": round(machine / wall, 3),
                "cores": os.cpu_count()}


class LogFollower:
    """Hands out each new JSON log line of a runtime once."""

    def __init__(self, runtime: BenchRuntime, message: str | None) -> None:
        self._runtime = runtime
        self._message = message
        self.position = runtime.mark()

    def new(self) -> list[dict[str, Any]]:
        end = self._runtime.mark()
        found = list(self._runtime.records(self.position, self._message, end))
        self.position = end
        return found
