"""The monitoring context's domain: a meter as monitoring knows it, an hour's exact total, the
alerts it raises, and the ports to where hours and raised alerts are kept.

Plain values and rules, no I/O: the ingestor, the silent check and the history work on these;
a repository (DynamoDB in production, dictionaries in unit tests) stores them.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from chalicelib.messages import Alert
from chalicelib.monitoring.readings import Reading, hour_key
from chalicelib.tariffs import Tariff


@dataclass(frozen=True)
class Meter:
    """What monitoring knows of a device (its replica, fed by the devices context's events)."""

    device_id: str
    name: str
    max_hourly_kwh: float
    timezone: str
    tariff_per_kwh: float | None
    currency: str | None
    owner_ids: frozenset[str]
    never_reported: bool = False  # no reading counted yet
    silenced: bool = False  # its silence was raised, and no reading came since
    tariffs: tuple[Tariff, ...] = ()  # time-of-use tariffs by effective date (see chalicelib.tariffs)
    reading_kind: str = "interval"  # "register": its readings are the meter's cumulative register (kWh)
    register_max_kwh: float | None = None  # where a register device's register rolls over


@dataclass
class HourTotal:
    """A device's UTC hour: the exact total, how many readings it counted and each reading's value
    by its timestamp key (when read with values); `silent_at`: its silence deadline, while the
    hour is (or was, until the silent check looks) its device's newest."""

    device_id: str
    hour_start: str
    total_kwh: Decimal
    reading_count: int
    values: dict[str, Decimal] = field(default_factory=dict)
    silent_at: str | None = None
    reset: bool = False  # a register device's hour in which a reading was a reset

    def last_reading(self) -> dt.datetime | None:
        """The latest reading counted in the hour (None when read without values)."""
        return max(map(dt.datetime.fromisoformat, self.values)) if self.values else None


# Silence deadlines are indexed in this many shards, so that ingestion's writes to the index
# spread over partitions (a fleet of a million meters moves ~1,700 deadlines a second).
DEADLINE_SHARDS = 8


def deadline_shard(device_id: str) -> int:
    """The index shard of a device's deadlines (stable across processes)."""
    return zlib.crc32(device_id.encode()) % DEADLINE_SHARDS


def deadline_key(moment: dt.datetime) -> str:
    """A deadline as fixed-width UTC text, so that deadlines sort as times."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def silence_deadline(last_reading: dt.datetime, interval_s: int, intervals: int) -> dt.datetime:
    """When a meter whose last reading is `last_reading` becomes silent (see `is_silent`)."""
    return last_reading + dt.timedelta(seconds=interval_s * intervals)


@dataclass(frozen=True)
class Applied:
    """The hour's total before and after a successful add."""

    total_before: Decimal
    total_after: Decimal
    reading_count: int


@dataclass
class WriteStats:
    """Write requests made and write units billed."""

    requests: int = 0
    units: float = 0.0

    def add(self, response: dict[str, Any]) -> None:
        """Count one write from its response (`ConsumedCapacity`, one unit when absent)."""
        self.requests += 1
        self.units += float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 1.0))


@dataclass(frozen=True)
class RegisterWindow:
    """What a register device's readings in `hour` depend on and change: the latest stored hour
    before it (whose last reading precedes them), the hour itself, and the earliest stored hour
    after it (whose first reading follows them), all with values; `revision` orders every write
    of the device's register hours."""

    revision: int
    previous: HourTotal | None
    current: HourTotal | None
    following: HourTotal | None


@dataclass(frozen=True)
class RegisterHour:
    """A register device's hour as it is to be written whole: its energy and its readings."""

    hour: str
    total_kwh: Decimal
    values: dict[str, Decimal]
    reset: bool
    silent_at: str | None = None  # its new silence deadline (it is the device's newest hour)


class HourTotals(Protocol):
    """Where hourly totals are kept. Adding is all or nothing: readings of one device and hour are
    counted together unless any of their timestamps was counted before, so nothing counts twice."""

    def add(self, device_id: str, hour: str, readings: list[Reading], stats: WriteStats,
            silent_at: str | None = None) -> Applied | None:
        """Count `readings` (all of this device and hour) at once; None if any was counted before.
        The write is counted in `stats` either way. `silent_at`: the hour's new silence deadline
        (a `deadline_key`), set in the same write."""
        ...

    def set_deadline(self, device_id: str, hour: str, silent_at: str | None) -> None:
        """Set (or, with None, remove) a stored hour's silence deadline; an absent hour stays absent."""
        ...

    def drop_deadlines(self, hours: list[tuple[str, str]], stats: WriteStats) -> None:
        """Remove the silence deadline of each of these (device, hour) that holds one, many to a
        request (an absent hour, or one without a deadline, is left as it is); counted in `stats`."""
        ...

    def due(self, shard: int, until: str, limit: int, cursor: str | None) -> tuple[list[tuple[str, str]], str | None]:
        """A page of the (device, hour) keys in one shard whose deadline is at or before `until`,
        earliest first, and the cursor of the rest (None at the end)."""
        ...

    def get(self, device_id: str, hour: str) -> HourTotal | None:
        """The hour with its values, as stored now (strongly consistent)."""
        ...

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], HourTotal]:
        """The stored hours among these (device, hour) keys, with values and deadlines; may lag a
        write a moment."""
        ...

    def between(self, device_id: str, first_hour: str, last_hour: str) -> list[HourTotal]:
        """Every stored hour from `first_hour` to `last_hour` inclusive, in order, without values."""
        ...

    def newest_first(self, device_id: str, first_hour: str, last_hour: str, page_size: int) -> Iterator[HourTotal]:
        """The stored hours from `last_hour` back to `first_hour`, values included, read `page_size`
        at a time: stop iterating and nothing more is read."""
        ...

    def latest(self, device_id: str) -> HourTotal | None:
        """The device's most recent hour with readings, values and deadline included (strongly
        consistent)."""
        ...

    def delete_device(self, device_id: str) -> int:
        """Remove a device's whole history; how many hours were removed."""
        ...

    def register_window(self, device_id: str, hour: str) -> RegisterWindow:
        """The stored hours a register device's readings in `hour` depend on (strongly consistent)."""
        ...

    def write_register(self, device_id: str, revision: int, hours: list[RegisterHour], stats: WriteStats,
                       handed_over: str | None = None) -> bool:
        """Write these hours of a register device at once, if its register hours are still at
        `revision` (else nothing is written and the answer is False); `handed_over`: a stored hour
        whose silence deadline is removed in the same write (a newer hour now holds it)."""
        ...


class MeterStatus(Protocol):
    """The fleet's status of each meter, kept by the paths that change it."""

    def reported(self, device_id: str) -> None:
        """A reading of the meter was counted: it is no longer never-reported nor silent."""
        ...

    def went_over(self, device_id: str, hour: str) -> None:
        """The hour's total went over the meter's limit (a later hour that did is kept)."""
        ...

    def silenced(self, device_id: str) -> None:
        """The meter's silence was raised; it stays silent until its next reading."""
        ...


class RaisedAlerts(Protocol):
    """Where raised alerts are kept: one per id, announced (sent to the inboxes) at least once."""

    def announce(self, alert: Alert, now: dt.datetime, *, fresh: bool = False) -> bool:
        """Store the alert unless its id is stored, and send it unless it was sent; True when this
        call sent it. `fresh`: the caller just crossed the limit, so the alert is most likely new."""
        ...

    def delete_device(self, device_id: str, deleted_at: str) -> None:
        """Remove a deleted device's alerts, and tell the inboxes to drop their copies raised
        before `deleted_at`."""
        ...


def over_consumption(meter: Meter, hour: str, total: Decimal, now: dt.datetime) -> Alert:
    """The alert of an hour whose total went over the meter's limit (one per device and hour)."""
    return Alert(
        id=f"{meter.device_id}:{hour}", kind="over_consumption", device_id=meter.device_id, device_name=meter.name,
        hour_start=hour, total_kwh=round(float(total), 6), max_hourly_kwh=meter.max_hourly_kwh,
        created_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
    )


def silent_alert(meter: Meter, last_reading: dt.datetime, now: dt.datetime) -> Alert:
    """The alert of a silence; its id names the last reading, so one silence raises one alert."""
    last = last_reading.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return Alert(
        id=f"{meter.device_id}:silent:{last}", kind="silent_meter", device_id=meter.device_id,
        device_name=meter.name, hour_start=hour_key(last_reading), total_kwh=0.0,
        max_hourly_kwh=meter.max_hourly_kwh, created_at=now.isoformat(timespec="seconds"),
    )


def is_silent(last_reading: dt.datetime, now: dt.datetime, interval_s: int, intervals: int) -> bool:
    """Silent once `intervals` whole intervals have passed with no reading."""
    return (now - last_reading).total_seconds() >= interval_s * intervals
