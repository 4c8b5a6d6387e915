"""The readings consumer: exact hourly totals, alerts, live updates.

A batch is handled as a whole so that readings of one device and hour cost one write:
each record (one reading, or a batch message of many) is parsed, and an invalid reading
goes to the dead-letter queue alone, with its reason; the batch's devices are read from
monitoring's replica in one request per hundred (an unknown one is retried, since the
replica may lag, and dead-lettered with its reason on its last delivery); readings are
grouped by (device, hour) and each group is added with one conditional UpdateItem. If a
group meets a reading counted before, only the new ones are added. A record fails alone:
only the records of a group whose write failed are retried.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from chalicelib import aws
from chalicelib.monitoring import alerts, replica, totals
from chalicelib.monitoring.readings import (
    Entry,
    InvalidReadingError,
    Limits,
    Reading,
    crossed,
    group_by_hour,
    parse_message,
)
from chalicelib.monitoring.replica import Meter
from chalicelib.monitoring.totals import WriteStats
from chalicelib.observability import logger
from chalicelib.platform.consumer import DeadLetter, dead_letter_many, queue_url
from chalicelib.settings import get_settings

QUEUE = "readings"
_PARALLEL_WRITES = 8


def _json_number(value: Any) -> Any:
    """A reading's numbers were read as Decimal; they go back out as JSON numbers."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass
class BatchReport:
    """What one batch did, for the logs and the benchmarks."""

    records: int = 0
    readings: int = 0
    counted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retried: int = 0
    alerts: int = 0
    writes: WriteStats = field(default_factory=WriteStats)

    def add(self, share: GroupReport) -> None:
        """Count what one group of the batch did."""
        self.counted += share.counted
        self.duplicates += share.duplicates
        self.alerts += share.alerts
        self.writes.requests += share.writes.requests
        self.writes.units += share.writes.units


@dataclass
class GroupReport:
    """What one (device, hour) group did; groups are written side by side, each with its own."""

    counted: int = 0
    duplicates: int = 0
    alerts: int = 0
    writes: WriteStats = field(default_factory=WriteStats)


@dataclass(frozen=True)
class _Record:
    message_id: str
    body: str
    receive_count: int


@dataclass(frozen=True)
class _Bad:
    """A reading (or a whole message) to dead-letter once its record is known not to be retried."""

    record: _Record
    entry: Entry | None  # None: the whole message
    reason: str


def will_cross(meter: Meter | None, group: list[tuple[str, Reading]], stored: totals.HourItem | None) -> bool:
    """Whether writing this group is expected to take its hour over the meter's limit (from what the
    hour held when the batch began; only an ordering hint, the write decides)."""
    if meter is None:
        return False
    before = stored.total_kwh if stored else Decimal(0)
    seen = stored.values if stored else {}
    added = sum((reading.kwh for _, reading in group if reading.key not in seen), Decimal(0))
    return crossed(before, before + added, meter.max_hourly_kwh)


@cache
def max_receive_count(queue: str) -> int:
    """The queue's maxReceiveCount (its redrive policy), read once per process."""
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url(queue), AttributeNames=["RedrivePolicy"])
    policy = json.loads(attributes.get("Attributes", {}).get("RedrivePolicy", "{}") or "{}")
    return int(policy.get("maxReceiveCount", 5))


class Ingestor:
    """Handles batches of reading messages; the replica lookup and clock are injectable."""

    def __init__(self, lookup: Callable[[Iterable[str]], dict[str, Meter | None]] = replica.get_many,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._lookup = lookup
        self._clock = clock

    def handle(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Lambda's SQS records in, `{"batchItemFailures": [...]}` out.

        A record is a message of one reading or of many (`{"readings": [...]}`). It is retried
        as a whole when one of its groups could not be written (its counted readings then
        count nothing the second time); its invalid readings are dead-lettered one by one.
        """
        report = BatchReport(records=len(records))
        failed: set[str] = set()
        bad: list[_Bad] = []
        parsed: list[tuple[_Record, Entry]] = []
        settings = get_settings()
        limits = Limits.at(self._clock(), settings.max_reading_kwh, settings.max_clock_skew_s)
        for raw in records:
            record = _Record(raw["messageId"], raw["body"],
                             int(raw.get("attributes", {}).get("ApproximateReceiveCount", 1)))
            try:
                entries = parse_message(record.body, limits)
            except InvalidReadingError as exc:
                bad.append(_Bad(record, None, str(exc)))
                continue
            for entry in entries:
                if entry.reading is None:
                    bad.append(_Bad(record, entry, entry.error or "invalid reading"))
                else:
                    parsed.append((record, entry))
        report.readings = len(parsed) + len(bad)
        meters = self._lookup({entry.reading.device_id for _, entry in parsed if entry.reading}) if parsed else {}
        known: list[tuple[str, Reading]] = []
        for record, entry in parsed:
            assert entry.reading is not None
            if meters.get(entry.reading.device_id) is not None:
                known.append((record.message_id, entry.reading))
            elif record.receive_count >= max_receive_count(QUEUE):
                bad.append(_Bad(record, entry, f"unknown device {entry.reading.device_id!r}"))
            else:
                failed.add(record.message_id)  # the replica may lag behind the device's creation
        updates: list[dict[str, Any]] = []
        groups = group_by_hour(known)
        # What the batch's hours hold already, in one request per hundred: a redelivered or
        # replayed reading then costs no write at all.
        stored = totals.get_many(groups) if groups else {}

        def write(key: tuple[str, str], group: list[tuple[str, Reading]]) -> tuple[GroupReport, list[Any], Exception | None]:
            share, added = GroupReport(), list[dict[str, Any]]()
            meter = meters[key[0]]
            assert meter is not None
            try:
                self._add_group(meter, key[1], group, stored.get(key), share, added)
                return share, added, None
            except Exception as exc:  # noqa: BLE001 - any failure: the records of this group are retried
                return share, added, exc

        # Groups are independent items: written side by side, a batch of a hundred meters takes
        # about the time of a few writes, not of a hundred; and the groups that will raise an alert
        # go first, so an alert does not wait behind the rest of a busy batch.
        ordered = sorted(groups.items(), key=lambda item: not will_cross(meters[item[0][0]], item[1],
                                                                         stored.get(item[0])))
        with ThreadPoolExecutor(max_workers=max(1, min(_PARALLEL_WRITES, len(groups)))) as pool:
            done = pool.map(lambda item: write(*item), ordered)
            for ((device_id, hour), group), (share, added, error) in zip(ordered, done, strict=True):
                report.add(share)
                updates.extend(added)
                if error is not None:
                    logger.warning("a group of readings failed; its records will be retried", extra={
                        "device_id": device_id, "hour": hour, "error": f"{type(error).__name__}: {error}"})
                    failed.update(message_id for message_id, _ in group)
        # A record that comes back dead-letters its bad readings on its last successful delivery.
        self._dead_letter([b for b in bad if b.record.message_id not in failed], report, failed)
        report.retried = len(failed)
        self._send_updates(updates)
        logger.info("readings batch", extra={
            "records": report.records, "readings": report.readings, "counted": report.counted, "duplicates": report.duplicates,
            "dead_lettered": report.dead_lettered, "retried": report.retried, "alerts": report.alerts,
            "write_requests": report.writes.requests, "write_units": report.writes.units,
        })
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in sorted(failed)]}

    def _add_group(self, meter: Meter, hour: str, group: list[tuple[str, Reading]], known: totals.HourItem | None,
                   report: GroupReport, updates: list[dict[str, Any]]) -> None:
        pending = self._not_counted(meter, hour, [reading for _, reading in group], known, report)
        if not pending:
            return
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
            pending = self._not_counted(meter, hour, pending, totals.get(meter.device_id, hour), report)
            if not pending:
                break
        if pending:
            raise RuntimeError("the hour kept changing under concurrent writers; retrying later")
        for step in steps:
            if crossed(step.total_before, step.total_after, meter.max_hourly_kwh):
                alert = alerts.over_consumption(meter.device_id, meter.name, hour, step.total_after,
                                                meter.max_hourly_kwh, self._clock())
                alerts.announce(alert, self._clock(), fresh=True)
                report.alerts += 1
                logger.info("over-consumption alert raised", extra={"alert_id": alert.id})
        if steps:
            # The owners go with it: the notifications consumer then reads no replica.
            updates.append({"device_id": meter.device_id, "hour_start": hour,
                            "kwh": round(float(steps[-1].total_after), 6), "owner_ids": sorted(meter.owner_ids)})

    def _not_counted(self, meter: Meter, hour: str, pending: list[Reading], stored: totals.HourItem | None,
                     report: GroupReport) -> list[Reading]:
        """The readings the hour (as `stored`) has not counted; a repeat makes sure its alert went out."""
        if stored is None:
            return pending
        fresh = [r for r in pending if r.key not in stored.values]
        if len(fresh) < len(pending):
            report.duplicates += len(pending) - len(fresh)
            self._repair_alert(meter, hour, stored.total_kwh)
        return fresh

    def _repair_alert(self, meter: Meter, hour: str, total: Decimal) -> None:
        """A redelivered reading: if its hour is over the limit, make sure the alert went out."""
        if total <= Decimal(str(meter.max_hourly_kwh)):
            return
        alert = alerts.over_consumption(meter.device_id, meter.name, hour, total, meter.max_hourly_kwh,
                                        self._clock())
        alerts.announce(alert, self._clock())

    @staticmethod
    def _dead_letter(bad: list[_Bad], report: BatchReport, failed: set[str]) -> None:
        """Each bad reading alone (a whole message when it is unusable), with its reason."""
        if not bad:
            return
        letters = [
            DeadLetter(b.record.body, b.reason, b.record.message_id) if b.entry is None or b.entry.index is None
            else DeadLetter(json.dumps(b.entry.raw, default=_json_number), b.reason, b.record.message_id,
                            {"reading_index": str(b.entry.index)})
            for b in bad
        ]
        try:
            dead_letter_many(QUEUE, letters)
        except Exception as exc:  # noqa: BLE001 - their records come back and try again
            logger.warning("dead-lettering failed; the records will be retried", extra={"error": str(exc)})
            failed.update(b.record.message_id for b in bad)
            return
        report.dead_lettered += len(bad)
        for b in bad:
            logger.warning("reading dead-lettered", extra={
                "message_id": b.record.message_id, "reason": b.reason,
                "reading_index": None if b.entry is None else b.entry.index})

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
