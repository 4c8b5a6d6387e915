"""The readings consumer: exact hourly totals, alerts, live updates.

A batch is handled as a whole so that readings of one device and hour cost one write:
each record is parsed (an invalid one goes to the dead-letter queue with its reason), the
device is looked up in monitoring's replica (an unknown one is retried, since the replica
may lag, and dead-lettered with its reason on its last delivery), readings are grouped by
(device, hour) and each group is added with one conditional UpdateItem. If a group meets a
reading counted before, its readings are added one by one, so only the new ones count.
A record fails alone: only the records of a group whose write failed are retried.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from chalicelib import aws
from chalicelib.monitoring import alerts, replica, totals
from chalicelib.monitoring.readings import InvalidReadingError, Reading, crossed, group_by_hour, parse_reading
from chalicelib.monitoring.replica import Meter
from chalicelib.monitoring.totals import WriteStats
from chalicelib.observability import logger
from chalicelib.platform.consumer import dead_letter, queue_url
from chalicelib.settings import get_settings

QUEUE = "readings"


@dataclass
class BatchReport:
    """What one batch did, for the logs and the benchmarks."""

    records: int = 0
    counted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retried: int = 0
    alerts: int = 0
    writes: WriteStats = field(default_factory=WriteStats)


@dataclass(frozen=True)
class _Record:
    message_id: str
    body: str
    receive_count: int


@cache
def max_receive_count(queue: str) -> int:
    """The queue's maxReceiveCount (its redrive policy), read once per process."""
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url(queue), AttributeNames=["RedrivePolicy"])
    policy = json.loads(attributes.get("Attributes", {}).get("RedrivePolicy", "{}") or "{}")
    return int(policy.get("maxReceiveCount", 5))


class Ingestor:
    """Handles batches of reading messages; the replica lookup and clock are injectable."""

    def __init__(self, lookup: Callable[[str], Meter | None] = replica.get,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._lookup = lookup
        self._clock = clock

    def handle(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Lambda's SQS records in, `{"batchItemFailures": [...]}` out."""
        report = BatchReport(records=len(records))
        failed: set[str] = set()
        parsed: list[tuple[str, Reading]] = []
        items = [_Record(r["messageId"], r["body"], int(r.get("attributes", {}).get("ApproximateReceiveCount", 1)))
                 for r in records]
        by_id = {item.message_id: item for item in items}
        settings = get_settings()
        for item in items:
            try:
                parsed.append((item.message_id, parse_reading(item.body, settings.max_reading_kwh)))
            except InvalidReadingError as exc:
                self._dead_letter(item, str(exc), report)
        meters: dict[str, Meter | None] = {}
        known: list[tuple[str, Reading]] = []
        for message_id, reading in parsed:
            if reading.device_id not in meters:
                meters[reading.device_id] = self._lookup(reading.device_id)
            if meters[reading.device_id] is not None:
                known.append((message_id, reading))
                continue
            record = by_id[message_id]
            if record.receive_count >= max_receive_count(QUEUE):
                self._dead_letter(record, f"unknown device {reading.device_id!r}", report)
            else:
                failed.add(message_id)
        updates: list[dict[str, Any]] = []
        for (device_id, hour), group in group_by_hour(known).items():
            meter = meters[device_id]
            assert meter is not None
            try:
                self._add_group(meter, hour, group, report, updates)
            except Exception as exc:  # noqa: BLE001 - any failure: this group alone is retried
                logger.warning("a group of readings failed; its records will be retried",
                               extra={"device_id": device_id, "hour": hour, "error": f"{type(exc).__name__}: {exc}"})
                failed.update(message_id for message_id, _ in group)
        report.retried = len(failed)
        self._send_updates(updates)
        logger.info("readings batch", extra={
            "records": report.records, "counted": report.counted, "duplicates": report.duplicates,
            "dead_lettered": report.dead_lettered, "retried": report.retried, "alerts": report.alerts,
            "write_requests": report.writes.requests, "write_units": report.writes.units,
        })
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in sorted(failed)]}

    def _add_group(self, meter: Meter, hour: str, group: list[tuple[str, Reading]], report: BatchReport,
                   updates: list[dict[str, Any]]) -> None:
        pending = [reading for _, reading in group]
        steps: list[totals.Applied] = []
        for _attempt in range(3):
            applied = totals.add(meter.device_id, hour, pending, report.writes)
            if applied is not None:
                steps.append(applied)
                report.counted += len(pending)
                pending = []
                break
            # Some of these were counted before (a redelivery, a replay, another consumer):
            # read what the hour has seen and add only the others, still in one write.
            stored = totals.get(meter.device_id, hour)
            seen = set(stored.values) if stored else set()
            fresh = [r for r in pending if r.key not in seen]
            report.duplicates += len(pending) - len(fresh)
            if stored is not None and len(fresh) < len(pending):
                self._repair_alert(meter, hour, stored.total_kwh)
            pending = fresh
            if not pending:
                break
        if pending:
            raise RuntimeError("the hour kept changing under concurrent writers; retrying later")
        for step in steps:
            if crossed(step.total_before, step.total_after, meter.max_hourly_kwh):
                alert = alerts.over_consumption(meter.device_id, meter.name, hour, step.total_after,
                                                meter.max_hourly_kwh, self._clock())
                alerts.announce(alert, self._clock())
                report.alerts += 1
                logger.info("over-consumption alert raised", extra={"alert_id": alert.id})
        if steps:
            updates.append({"device_id": meter.device_id, "hour_start": hour,
                            "kwh": round(float(steps[-1].total_after), 6)})

    def _repair_alert(self, meter: Meter, hour: str, total: Decimal) -> None:
        """A redelivered reading: if its hour is over the limit, make sure the alert went out."""
        if total <= Decimal(str(meter.max_hourly_kwh)):
            return
        alert = alerts.over_consumption(meter.device_id, meter.name, hour, total, meter.max_hourly_kwh,
                                        self._clock())
        alerts.announce(alert, self._clock())

    def _dead_letter(self, record: _Record, reason: str, report: BatchReport) -> None:
        from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

        dead_letter(QUEUE, SQSRecord({"messageId": record.message_id, "body": record.body}), reason)
        report.dead_lettered += 1
        logger.warning("reading dead-lettered", extra={"message_id": record.message_id, "reason": reason})

    @staticmethod
    def _send_updates(updates: list[dict[str, Any]]) -> None:
        """Live chart updates for the owners' open sockets; best effort (the chart reloads)."""
        if not updates:
            return
        try:
            aws.client("sqs").send_message(
                QueueUrl=queue_url("notifications"),
                MessageBody=json.dumps({"type": "readings.updated", "readings": updates}),
            )
        except Exception as exc:  # noqa: BLE001 - live updates must not fail the counted readings
            logger.warning("live reading updates not sent", extra={"error": str(exc)})
