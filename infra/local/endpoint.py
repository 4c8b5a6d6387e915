"""The AWS-compatible endpoint: an embedded moto server, or one named by AWS_ENDPOINT_URL.

moto keeps everything in memory, so the runtime snapshots the stage's tables (and, on a
clean stop, the messages in its queues) into the data folder and restores them at start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from infra.local.lambdas import die_with_parent


class EndpointError(Exception):
    """The embedded endpoint did not start."""


class EmbeddedEndpoint:
    """A moto server process on host:port."""

    def __init__(self, host: str, port: int, log_path: Path) -> None:
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        # Its request log goes to a file: a pipe nobody reads would fill up and block it.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log_file:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only async-signal-safe work
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self.log_path.read_text(errors="replace")
                raise EndpointError(f"the moto server exited at start: {err.strip()[-500:]}")
            try:
                requests.get(f"{self.url}/moto-api/data.json", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise EndpointError(f"the moto server did not answer on {self.url} in {timeout_s:.0f} s")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def aws_client(service: str, endpoint_url: str | None, region: str) -> Any:
    """A client of the runtime itself (not of the app)."""
    return boto3.session.Session(region_name=region).client(
        service,
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


class Snapshotter:
    """Saves and restores the stage's tables and queued messages as one JSON file."""

    def __init__(
        self,
        path: Path,
        endpoint_url: str,
        region: str,
        tables: list[str],
        queues: list[str],
        log: Callable[[str], None],
        in_flight_wait_s: float = 15.0,
    ) -> None:
        self.path = path
        self._in_flight_wait_s = in_flight_wait_s
        self._dynamodb = aws_client("dynamodb", endpoint_url, region)
        self._sqs = aws_client("sqs", endpoint_url, region)
        self._tables = tables
        # Dead-letter queues last: draining a main queue may move exhausted messages there.
        self._queues = sorted(queues, key=lambda name: name.endswith("-dlq"))
        self._log = log

    def save(self, *, include_queues: bool) -> dict[str, int]:
        """Write the snapshot atomically; with `include_queues` the queues are drained."""
        previous = self._load()
        data: dict[str, Any] = {"version": 1, "saved_at": time.time(), "tables": {}, "queues": {}}
        for table in self._tables:
            data["tables"][table] = self._scan(table)
        if include_queues:
            for queue in self._queues:
                data["queues"][queue] = self._drain(queue)
        else:
            # Messages still queued are not touched by a periodic snapshot; the last clean
            # stop's queue contents stay in the file until the next clean stop.
            data["queues"] = previous.get("queues", {}) if previous else {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)
        return {
            "items": sum(len(v) for v in data["tables"].values()),
            "messages": sum(len(v) for v in data["queues"].values()),
        }

    def restore(self) -> dict[str, int]:
        """Put the saved items and messages back into a fresh endpoint."""
        data = self._load()
        if not data:
            return {"items": 0, "messages": 0}
        items = messages = 0
        for table, rows in data.get("tables", {}).items():
            if table not in self._tables:
                self._log(f"snapshot: table {table} is no longer declared; its items are skipped")
                continue
            for start in range(0, len(rows), 25):
                self._batch_write(table, rows[start : start + 25])
            items += len(rows)
        for queue, saved in data.get("queues", {}).items():
            if queue not in self._queues:
                self._log(f"snapshot: queue {queue} is no longer declared; its messages are skipped")
                continue
            url = self._sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            for start in range(0, len(saved), 10):
                entries = [
                    {"Id": str(i), "MessageBody": m["body"], "MessageAttributes": m["attributes"]}
                    if m["attributes"]
                    else {"Id": str(i), "MessageBody": m["body"]}
                    for i, m in enumerate(saved[start : start + 10])
                ]
                self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
            messages += len(saved)
        # The messages are back in their queues: a crash from here must not send them twice.
        data["queues"] = {}
        self.path.write_text(json.dumps(data))
        return {"items": items, "messages": messages}

    def _load(self) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        try:
            loaded = json.loads(self.path.read_text())
        except ValueError as exc:
            broken = self.path.with_suffix(".broken")
            os.replace(self.path, broken)
            self._log(f"snapshot: {self.path} is unreadable ({exc}); kept as {broken}")
            return None
        return loaded if isinstance(loaded, dict) else None

    def _scan(self, table: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        paginator = self._dynamodb.get_paginator("scan")
        for page in paginator.paginate(TableName=table):
            rows.extend(page["Items"])
        return rows

    def _batch_write(self, table: str, rows: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {table: [{"PutRequest": {"Item": row}} for row in rows]}
        while pending:
            result = self._dynamodb.batch_write_item(RequestItems=pending)
            pending = result.get("UnprocessedItems") or {}

    def _drain(self, queue: str) -> list[dict[str, Any]]:
        url = self._sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        saved: list[dict[str, Any]] = []
        deadline = time.monotonic() + self._in_flight_wait_s
        while True:
            batch = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=600,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                # A message whose last delivery failed is invisible until its visibility
                # timeout ends (short locally): wait for it rather than lose it.
                in_flight = int(
                    self._sqs.get_queue_attributes(
                        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
                    )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
                )
                if in_flight == 0 or time.monotonic() > deadline:
                    if in_flight:
                        self._log(f"snapshot: {in_flight} message(s) of {queue} still in flight")
                    return saved
                time.sleep(0.2)
                continue
            for message in batch:
                saved.append(
                    {"body": message["Body"], "attributes": message.get("MessageAttributes", {})}
                )
            self._sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
                ],
            )
