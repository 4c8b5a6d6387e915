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
from typing import Any

from chalicelib.messages import ReadingsUpdated, ReadingUpdate
from chalicelib.monitoring import registers, replica
from chalicelib.monitoring.domain import (
    Applied,
    HourTotal,
    HourTotals,
    Meter,
    MeterStatus,
    RaisedAlerts,
    RegisterHour,
    WriteStats,
    over_consumption,
)
from chalicelib.monitoring.readings import (
    Entry,
    Limits,
    Reading,
    crossed,
    group_by_hour,
    hour_key,
    parse_message,
    previous_hour,
    timestamp_key,
)
from chalicelib.monitoring.silent import deadline_of
from chalicelib.observability import logger
from chalicelib.platform import consumer, queues
from chalicelib.platform.consumer import DeadLetter, Delivery, Outcome, Source
from chalicelib.settings import get_settings

QUEUE = "readings"
_REGISTER_ATTEMPTS = 5  # writes of one register hour that lost to another writer before its records are retried
_PARALLEL_WRITES = 8


def _json_number(value: Any) -> Any:
    """A reading's numbers were read as Decimal; they go back out as JSON numbers."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass
class BatchReport:
    """What one batch did, for the logs and the benchmarks."""

    readings: int = 0
    counted: int = 0
    duplicates: int = 0
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
    hand_over: tuple[str, str] | None = None  # the (device, hour) whose deadline the group's new hour takes over


def _any(entry: Entry) -> Reading:
    """A parsed entry's reading: valid as an interval one, or only as a register device's."""
    reading = entry.reading or entry.register
    assert reading is not None
    return reading


def _letter(bad: _Bad) -> DeadLetter:
    """A bad reading of a batch message goes alone, as itself, with its place in the batch."""
    if bad.entry.index is None:
        return DeadLetter(bad.delivery.body, bad.reason, bad.delivery.message_id)
    return DeadLetter(json.dumps(bad.entry.raw, default=_json_number), bad.reason, bad.delivery.message_id,
                      {"reading_index": str(bad.entry.index)})


@dataclass(frozen=True)
class _Bad:
    """A reading to dead-letter once its record is known not to be retried."""

    delivery: Delivery[list[Entry]]
    entry: Entry
    reason: str


def will_cross(meter: Meter | None, group: list[tuple[str, Reading]], stored: HourTotal | None) -> bool:
    """Whether writing this group is expected to take its hour over the meter's limit (from what the
    hour held when the batch began; only an ordering hint, the write decides)."""
    if meter is None:
        return False
    before = stored.total_kwh if stored else Decimal(0)
    seen = stored.values if stored else {}
    added = sum((reading.kwh for _, reading in group if reading.key not in seen), Decimal(0))
    return crossed(before, before + added, meter.max_hourly_kwh)


Notify = Callable[[ReadingsUpdated], None]


def _send_notification(message: ReadingsUpdated) -> None:
    queues.send("notifications", message)


class Ingestor:
    """Handles batches of reading messages. Its ports: where hours and raised alerts are kept
    (DynamoDB unless given), the replica lookup, the clock, and where live updates go."""

    def __init__(self, hours: HourTotals | None = None, alerts: RaisedAlerts | None = None,
                 lookup: Callable[[Iterable[str]], dict[str, Meter | None]] = replica.get_many,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 notify: Notify = _send_notification, status: MeterStatus | None = None) -> None:
        from chalicelib.monitoring.alerts import DynamoRaisedAlerts
        from chalicelib.monitoring.totals import DynamoHourTotals

        self._hours: HourTotals = hours or DynamoHourTotals()
        self._alerts: RaisedAlerts = alerts or DynamoRaisedAlerts()
        self._status: MeterStatus = status or replica.DynamoMeterStatus()
        self._lookup = lookup
        self._clock = clock
        self._notify = notify

    @property
    def source(self) -> Source[list[Entry]]:
        """The readings queue; a message parses into its readings, each valid or not, judged
        against the limits of the moment the source is taken (once a batch)."""
        settings = get_settings()
        limits = Limits.at(self._clock(), settings.max_reading_kwh, settings.max_clock_skew_s)
        return Source(QUEUE, lambda body: parse_message(body, limits))

    def handle(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Lambda's SQS records in, `{"batchItemFailures": [...]}` out (through the pipeline)."""
        return consumer.run(self.source, records, self.handle_batch)

    def handle_batch(self, deliveries: list[Delivery[list[Entry]]]) -> Outcome:
        """Count a batch of reading messages (one reading or many each).

        A record is retried as a whole when one of its groups could not be written (its
        counted readings then count nothing the second time); its invalid readings are
        dead-lettered one by one.
        """
        report = BatchReport()
        failed: set[str] = set()
        bad: list[_Bad] = []
        parsed: list[tuple[Delivery[list[Entry]], Entry]] = []
        for delivery in deliveries:
            for entry in delivery.message:
                if entry.reading is None and entry.register is None:
                    bad.append(_Bad(delivery, entry, entry.error or "invalid reading"))
                else:
                    parsed.append((delivery, entry))
        report.readings = len(parsed) + len(bad)
        meters = self._lookup({_any(entry).device_id for _, entry in parsed}) if parsed else {}
        known: list[tuple[str, Reading]] = []
        registered: list[tuple[str, Reading]] = []  # register devices' readings
        for delivery, entry in parsed:
            meter = meters.get(_any(entry).device_id)
            if meter is not None and meter.reading_kind == "register":
                registered.append((delivery.message_id, _any(entry)))
            elif entry.reading is None:  # above an interval reading's maximum, and not a register device's
                bad.append(_Bad(delivery, entry, entry.error or "invalid reading"))
            elif meter is not None:
                known.append((delivery.message_id, entry.reading))
            elif delivery.last_attempt:
                bad.append(_Bad(delivery, entry, f"unknown device {entry.reading.device_id!r}"))
            else:
                failed.add(delivery.message_id)  # the replica may lag behind the device's creation
        updates: list[ReadingUpdate] = []
        groups = group_by_hour(known)
        # Each device's newest hour of the batch carries its silence deadline.
        newest: dict[str, str] = {}
        for device_id, hour in groups:
            newest[device_id] = max(hour, newest.get(device_id, hour))
        # What the batch's hours hold already, in one request per hundred: a redelivered or
        # replayed reading then costs no write at all.
        stored = self._hours.get_many(groups) if groups else {}

        def write(key: tuple[str, str], group: list[tuple[str, Reading]]) -> tuple[GroupReport, list[ReadingUpdate], Exception | None]:
            share, added = GroupReport(), list[ReadingUpdate]()
            meter = meters[key[0]]
            assert meter is not None
            try:
                with_deadline = newest[key[0]] == key[1]
                # The hour before may hold the deadline, unless the meter never reported, or that hour
                # is in this batch too and held none (its own write sets none).
                before = (key[0], previous_hour(key[1]))
                hand_over = with_deadline and not meter.never_reported and (
                    before not in groups or before in stored and stored[before].silent_at is not None)
                wrote = self._add_group(meter, key[1], group, stored.get(key), share, added, with_deadline, hand_over)
                if wrote and with_deadline and (meter.never_reported or meter.silenced):
                    self._status.reported(meter.device_id)  # once a device, and only when it was flagged
                return share, added, None
            except Exception as exc:  # noqa: BLE001 - any failure: the records of this group are retried
                return share, added, exc

        # Groups are independent items: written side by side, a batch of a hundred meters takes
        # about the time of a few writes, not of a hundred; and the groups that will raise an alert
        # go first, so an alert does not wait behind the rest of a busy batch.
        ordered = sorted(groups.items(), key=lambda item: not will_cross(meters[item[0][0]], item[1],
                                                                         stored.get(item[0])))
        handovers: list[tuple[str, str]] = []
        with ThreadPoolExecutor(max_workers=max(1, min(_PARALLEL_WRITES, len(groups)))) as pool:
            done = pool.map(lambda item: write(*item), ordered)
            for ((device_id, hour), group), (share, added, error) in zip(ordered, done, strict=True):
                report.add(share)
                updates.extend(added)
                if share.hand_over is not None:
                    handovers.append(share.hand_over)
                if error is not None:
                    logger.warning("a group of readings failed; its records will be retried", extra={
                        "device_id": device_id, "hour": hour, "error": f"{type(error).__name__}: {error}"})
                    failed.update(message_id for message_id, _ in group)
        self._hand_over(handovers, report)
        if registered:
            self._count_registers(meters, registered, report, failed, updates)
        self._send_updates(updates)
        return Outcome(failed=failed, dead=[_letter(b) for b in bad], log={
            "readings": report.readings, "counted": report.counted, "duplicates": report.duplicates,
            "invalid": len(bad), "alerts": report.alerts,
            "write_requests": report.writes.requests, "write_units": report.writes.units,
        })

    def _count_registers(self, meters: dict[str, Meter | None], registered: list[tuple[str, Reading]],
                         report: BatchReport, failed: set[str], updates: list[ReadingUpdate]) -> None:
        """Count register devices' readings: each device's hours one after another (each depends on
        the one before), devices side by side. A failed hour retries its records and the device's
        later hours of the batch (they would count against a state that may lack it)."""
        by_device: dict[str, list[tuple[tuple[str, str], list[tuple[str, Reading]]]]] = {}
        for key, group in group_by_hour(registered).items():
            by_device.setdefault(key[0], []).append((key, group))

        def count(device_id: str) -> tuple[GroupReport, list[ReadingUpdate], set[str]]:
            share, added, retry = GroupReport(), list[ReadingUpdate](), set[str]()
            meter = meters[device_id]
            assert meter is not None
            for (_, hour), group in sorted(by_device[device_id]):
                if retry:
                    retry.update(message_id for message_id, _ in group)
                    continue
                try:
                    self._add_register_group(meter, hour, [reading for _, reading in group], share, added)
                except Exception as exc:  # noqa: BLE001 - any failure: this hour's and the later ones' records retry
                    logger.warning("a group of register readings failed; its records will be retried", extra={
                        "device_id": device_id, "hour": hour, "error": f"{type(exc).__name__}: {exc}"})
                    retry.update(message_id for message_id, _ in group)
            return share, added, retry

        with ThreadPoolExecutor(max_workers=max(1, min(_PARALLEL_WRITES, len(by_device)))) as pool:
            for share, added, retry in pool.map(count, sorted(by_device)):
                report.add(share)
                updates.extend(added)
                failed.update(retry)

    def _add_register_group(self, meter: Meter, hour: str, group: list[Reading], report: GroupReport,
                            updates: list[ReadingUpdate]) -> None:
        """Count a register device's readings of one hour: the hour and the next stored one (whose first
        reading may now follow one of these) are computed again from their registers and written at once."""
        arriving = [(r.timestamp, r.kwh) for r in group]
        max_kwh = None if meter.register_max_kwh is None else Decimal(str(meter.register_max_kwh))
        for _attempt in range(_REGISTER_ATTEMPTS):
            window = self._hours.register_window(meter.device_id, hour)
            stored = {h.hour_start: h for h in (window.current, window.following) if h is not None}
            known = {dt.datetime.fromisoformat(key): value for h in stored.values() for key, value in h.values.items()}
            merged, fresh = registers.merge(known, arriving)
            if not fresh:
                report.duplicates += len(arriving)
                if window.current is not None:
                    self._repair_alert(meter, hour, window.current.total_kwh)
                return
            before = None
            if window.previous is not None and window.previous.values:
                last = max(window.previous.values, key=dt.datetime.fromisoformat)
                before = (dt.datetime.fromisoformat(last), window.previous.values[last])
            energy = registers.hourly(merged, max_kwh, before)
            newest = window.following is None
            mine = {moment: value for moment, value in merged.items() if hour_key(moment) == hour}
            writes = [RegisterHour(hour, energy[hour].total_kwh, {timestamp_key(m): v for m, v in mine.items()},
                                   energy[hour].reset, deadline_of(max(mine)) if newest else None)]
            if window.following is not None:
                then = energy[window.following.hour_start]
                if (then.total_kwh, then.reset) != (window.following.total_kwh, window.following.reset):
                    writes.append(RegisterHour(then.hour, then.total_kwh, dict(window.following.values), then.reset))
            handed_over = (window.previous.hour_start if newest and window.current is None
                           and window.previous is not None and window.previous.silent_at else None)
            if self._hours.write_register(meter.device_id, window.revision, writes, report.writes, handed_over):
                break
        else:
            raise RuntimeError("the device's registers kept changing under concurrent writers; retrying later")
        report.counted += len(fresh)
        report.duplicates += len(arriving) - len(fresh)
        if newest and (meter.never_reported or meter.silenced):
            self._status.reported(meter.device_id)
        for write in writes:
            was = stored[write.hour].total_kwh if write.hour in stored else Decimal(0)
            if crossed(was, write.total_kwh, meter.max_hourly_kwh):
                alert = over_consumption(meter, write.hour, write.total_kwh, self._clock())
                self._status.went_over(meter.device_id, write.hour)
                self._alerts.announce(alert, self._clock(), fresh=True)
                report.alerts += 1
                logger.info("over-consumption alert raised", extra={"alert_id": alert.id})
            updates.append(ReadingUpdate(device_id=meter.device_id, hour_start=write.hour,
                                         kwh=round(float(write.total_kwh), 6), owner_ids=sorted(meter.owner_ids)))

    def _add_group(self, meter: Meter, hour: str, group: list[tuple[str, Reading]], known: HourTotal | None,
                   report: GroupReport, updates: list[ReadingUpdate], with_deadline: bool, hand_over: bool) -> bool:
        """Count a group's new readings; True when it wrote any. `with_deadline`: the write also
        sets the hour's silence deadline (from its latest reading); `hand_over` (with it): when it
        makes the hour, the hour before may hold the device's deadline, which the report then names."""
        pending = self._not_counted(meter, hour, [reading for _, reading in group], known, report)
        if not pending:
            return False
        steps: list[Applied] = []
        for _attempt in range(3):
            latest = max(r.timestamp for r in pending)
            counted = known.last_reading() if known is not None else None
            deadline = deadline_of(max(latest, counted) if counted else latest) if with_deadline else None
            applied = self._hours.add(meter.device_id, hour, pending, report.writes, deadline)
            if applied is not None:
                if hand_over and applied.reading_count == len(pending):
                    report.hand_over = (meter.device_id, previous_hour(hour))  # this write made the hour
                steps.append(applied)
                report.counted += len(pending)
                pending = []
                break
            # Some of these were counted before (a redelivery, a replay, another consumer):
            # read what the hour has seen and add only the others, still in one write.
            known = self._hours.get(meter.device_id, hour)
            pending = self._not_counted(meter, hour, pending, known, report)
            if not pending:
                break
        if pending:
            raise RuntimeError("the hour kept changing under concurrent writers; retrying later")
        for step in steps:
            if crossed(step.total_before, step.total_after, meter.max_hourly_kwh):
                alert = over_consumption(meter, hour, step.total_after, self._clock())
                self._status.went_over(meter.device_id, hour)
                self._alerts.announce(alert, self._clock(), fresh=True)
                report.alerts += 1
                logger.info("over-consumption alert raised", extra={"alert_id": alert.id})
        if steps:
            # The owners go with it: the notifications consumer then reads no replica.
            updates.append(ReadingUpdate(device_id=meter.device_id, hour_start=hour,
                                         kwh=round(float(steps[-1].total_after), 6), owner_ids=sorted(meter.owner_ids)))
        return bool(steps)

    def _hand_over(self, hours: list[tuple[str, str]], report: BatchReport) -> None:
        """Drop the deadlines the batch's new hours took over, many to a request. Best effort: a
        deadline left behind (as one after a gap) is put right by the silent check when it comes due."""
        if not hours:
            return
        try:
            self._hours.drop_deadlines(hours, report.writes)
        except Exception as exc:  # noqa: BLE001 - the readings are counted; the check repairs the deadlines
            logger.warning("deadlines not handed over; the silent check will drop them", extra={
                "hours": len(hours), "error": f"{type(exc).__name__}: {exc}"})

    def _not_counted(self, meter: Meter, hour: str, pending: list[Reading], stored: HourTotal | None,
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
        self._alerts.announce(over_consumption(meter, hour, total, self._clock()), self._clock())

    def _send_updates(self, updates: list[ReadingUpdate]) -> None:
        """Live chart updates for the owners' open sockets; best effort (the chart reloads)."""
        if not updates:
            return
        try:
            self._notify(ReadingsUpdated(readings=updates))
        except Exception as exc:  # noqa: BLE001 - live updates must not fail the counted readings
            logger.warning("live reading updates not sent", extra={"error": str(exc)})
