"""Extra readings consumers beside the runtime's, run as processes with the runtime's environment.

`python -m tests.consumers poll THREADS SECONDS`: threads that each receive from the readings
queue and hand batches to the app's Ingestor, like more Lambda instances would.
`python -m tests.consumers count` (readings as JSON on stdin): hands them to the Ingestor as
Lambda records and prints how many DynamoDB write requests that made (counted through
botocore's events) and how many readings were counted.
`python -m tests.consumers drop-deadlines`: gives hours of fresh devices deadlines that are never
due (so no silent check touches them), drops them in one call of the hours' repository, and prints
what is left.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

from tests.accounts import runtime_env
from tests.harness import PROJECT_DIR, RuntimeProcess

WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


def _command(runtime: RuntimeProcess, *args: str, stdin: str | None = None, timeout_s: float = 120) -> str:
    """Run `python -m tests.consumers ARGS` with the runtime's environment; what it printed."""
    done = subprocess.run([sys.executable, "-m", "tests.consumers", *args], input=stdin, cwd=PROJECT_DIR,
                          env=runtime_env(runtime), capture_output=True, text=True, timeout=timeout_s, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _result(printed: str) -> dict[str, Any]:
    """A command's result: the JSON of its last line (log lines come before it)."""
    return dict(json.loads(printed.strip().splitlines()[-1]))


def run_consumers(runtime: RuntimeProcess, count: int, seconds: float) -> None:
    _command(runtime, "poll", str(count), str(seconds), timeout_s=seconds + 60)


def count_writes_consuming(runtime: RuntimeProcess, readings: list[dict[str, Any]]) -> tuple[int, int]:
    result = _result(_command(runtime, "count", stdin=json.dumps(readings)))
    return int(result["writes"]), int(result["counted"])


def _records(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": {"ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1")}}
            for m in messages]


def _poll(threads: int, seconds: float) -> None:
    from chalicelib import aws
    from chalicelib.monitoring.ingest import Ingestor
    from chalicelib.platform.queues import queue_url

    url = queue_url("readings")
    ingestor = Ingestor()
    deadline = time.monotonic() + seconds

    def loop() -> None:
        sqs = aws.client("sqs")
        while time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           AttributeNames=["All"]).get("Messages", [])
            if not messages:
                continue
            failed = {f["itemIdentifier"] for f in ingestor.handle(_records(messages))["batchItemFailures"]}
            done = [m for m in messages if m["MessageId"] not in failed]
            if done:
                sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def _count(readings: list[dict[str, Any]]) -> dict[str, int]:
    from chalicelib.monitoring import ingest
    from tests.aws_calls import counted_calls

    ingestor = ingest.Ingestor()
    original = ingest.BatchReport
    reports: list[Any] = []

    class Recording(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            reports.append(self)

    ingest.BatchReport = Recording  # type: ignore[misc]
    with counted_calls() as calls:
        for start in range(0, len(readings), 10):
            batch = [{"messageId": str(uuid.uuid4()), "receiptHandle": "-", "body": json.dumps(r),
                      "attributes": {"ApproximateReceiveCount": "1"}} for r in readings[start:start + 10]]
            assert not ingestor.handle(batch)["batchItemFailures"]
    counted = sum(r.counted for r in reports)
    return {"writes": sum(calls[operation] for operation in WRITE_OPERATIONS), "counted": counted}


def drop_deadlines(runtime: RuntimeProcess) -> dict[str, Any]:
    return _result(_command(runtime, "drop-deadlines"))


def _drop_deadlines() -> dict[str, Any]:
    import datetime as dt
    from decimal import Decimal

    from chalicelib.monitoring.domain import WriteStats
    from chalicelib.monitoring.readings import Reading
    from chalicelib.monitoring.totals import DynamoHourTotals

    hours, hour, never_due = DynamoHourTotals(), "2026-06-16T09:00:00Z", "2100-01-01T00:00:00.000000Z"
    devices = [f"dd-{uuid.uuid4().hex[:10]}" for _ in range(27)]  # more than one request takes (25)
    without, absent = f"dd-{uuid.uuid4().hex[:10]}", f"dd-{uuid.uuid4().hex[:10]}"
    reading = dt.datetime(2026, 6, 16, 9, 50, tzinfo=dt.UTC)
    for device_id in [*devices, without]:
        hours.add(device_id, hour, [Reading(device_id, reading, Decimal("0.1"))], WriteStats(),
                  None if device_id == without else never_due)
    stats = WriteStats()
    hours.drop_deadlines([(device_id, hour) for device_id in [*devices, without, absent]], stats)
    kept = {d: hours.get(d, hour) for d in [*devices, without, absent]}
    return {"requests": stats.requests, "units": stats.units,
            "with_deadline": [d for d, h in kept.items() if h is not None and h.silent_at is not None],
            "hours": sum(h is not None for h in kept.values()), "devices": len(devices) + 1}


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "poll":
        _poll(int(sys.argv[2]), float(sys.argv[3]))
    elif command == "count":
        print(json.dumps(_count(json.load(sys.stdin))))
    elif command == "drop-deadlines":
        print(json.dumps(_drop_deadlines()))
    else:
        sys.exit(f"unknown command {command}")
