"""Pure rules of readings: parsing, the hour a reading counts in, grouping, the alert rule.

No I/O here; everything takes values (and an explicit `now` where time matters).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.messages import SCHEMA_VERSION, InvalidMessage
from chalicelib.platform import jsontext

UTC = dt.UTC
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=UTC)  # what any date or time of the history may reach
# SQS takes messages up to 1 MiB; a reading alone is never near 4 KB.
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_READING_BYTES = 4096


class InvalidReadingError(InvalidMessage):
    """The message is not a valid reading; the text says why (it becomes the DLQ reason)."""


MAX_REGISTER_KWH = 1_000_000_000  # a cumulative register may read far above any interval's energy


class AboveMaximumError(InvalidReadingError):
    """A value above an interval reading's maximum; `reading`, when the rest is valid, is what it
    is as a register device's reading (a cumulative register is not bound by that maximum)."""

    def __init__(self, message: str, reading: Reading | None = None) -> None:
        super().__init__(message)
        self.reading = reading


@dataclass(frozen=True)
class Limits:
    """What a reading may be: its value at most `max_kwh`, its time at most `not_after` (now plus
    the allowed clock skew: a reading from the future would claim hours ahead and hide silence)."""

    max_kwh: float
    not_after: dt.datetime

    @classmethod
    def at(cls, now: dt.datetime, max_kwh: float, max_clock_skew_s: float) -> Limits:
        return cls(max_kwh, now.astimezone(UTC) + dt.timedelta(seconds=max_clock_skew_s))


@dataclass(frozen=True)
class Reading:
    device_id: str
    timestamp: dt.datetime  # aware, UTC
    kwh: Decimal

    # Computed once a reading: the ingestion path asks for them several times each.
    @functools.cached_property
    def key(self) -> str:
        """What makes a reading unique for its device: its exact timestamp."""
        return timestamp_key(self.timestamp)

    @functools.cached_property
    def hour(self) -> str:
        return hour_key(self.timestamp)


def timestamp_key(moment: dt.datetime) -> str:
    """`2026-11-23T20:10:00Z`, with the fraction of a second when there is one (no trailing zeros)."""
    moment = moment.astimezone(UTC)
    text = moment.replace(tzinfo=None).isoformat()  # the fraction has six digits when there is one
    return (text.rstrip("0") if moment.microsecond else text) + "Z"


def hour_key(moment: dt.datetime) -> str:
    """The clock hour (UTC) that contains `moment`, e.g. `2026-11-23T20:00:00Z`."""
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:00:00Z"


def parse_hour_key(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, "%Y-%m-%dT%H:00:00Z").replace(tzinfo=UTC)


@functools.lru_cache(maxsize=1024)
def previous_hour(key: str) -> str:
    """The hour key before this one (asked once a group on the ingestion path, of few distinct hours)."""
    return hour_key(parse_hour_key(key) - dt.timedelta(hours=1))


def parse_timestamp(value: Any, not_after: dt.datetime = LATEST) -> dt.datetime:
    """ISO-8601 (a naive one is UTC) or epoch seconds, as an aware UTC datetime from 2000 to `not_after`."""
    if isinstance(value, bool):
        raise InvalidReadingError("timestamp must be ISO-8601 text or epoch seconds")
    try:
        if isinstance(value, int | float | Decimal):
            number = float(value)
            if not math.isfinite(number):
                raise InvalidReadingError("timestamp is not a finite number")
            moment = dt.datetime.fromtimestamp(number, UTC)
        elif isinstance(value, str):
            try:
                moment = dt.datetime.fromisoformat(value.strip())
            except ValueError as exc:
                raise InvalidReadingError(f"timestamp {value[:40]!r} is not ISO-8601") from exc
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        else:
            raise InvalidReadingError("timestamp must be ISO-8601 text or epoch seconds")
    except (OverflowError, OSError, ValueError) as exc:  # near year 1 or 9999, or beyond a float
        if isinstance(exc, InvalidReadingError):
            raise
        raise InvalidReadingError("timestamp is out of range") from exc
    if moment < EARLIEST:
        raise InvalidReadingError("timestamp is before 2000")
    if moment > min(not_after, LATEST):
        raise InvalidReadingError("timestamp is in the future (more than the allowed clock skew past now)")
    return moment


def parse_value(value: Any, max_reading_kwh: float) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidReadingError("measurement_value must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidReadingError("measurement_value is not a number") from exc
    if not number.is_finite():
        raise InvalidReadingError("measurement_value is not finite")
    if number < 0:
        raise InvalidReadingError("measurement_value is negative")
    if number > Decimal(str(max_reading_kwh)):
        raise AboveMaximumError(f"measurement_value is above the maximum of {max_reading_kwh} kWh")
    if number.as_tuple().exponent < -12:  # type: ignore[operator]
        number = round(number, 12)
    return number.normalize() if number else Decimal(0)


def _loads(body: str) -> Any:
    """JSON with its numbers as Decimals (a reading's value is kept exactly)."""
    try:
        return jsontext.loads(body, parse_float=Decimal)
    except ValueError as exc:
        raise InvalidReadingError(f"the message is not JSON: {str(exc)[:200]}") from exc


def parse_reading(body: str | dict[str, Any], limits: Limits) -> Reading:
    """A reading message (JSON text or an already-parsed object), validated."""
    if isinstance(body, str):
        if len(body) > MAX_READING_BYTES:
            raise InvalidReadingError("the message is larger than a reading can be")
        data = _loads(body)
    else:
        data = body
    if not isinstance(data, dict):
        raise InvalidReadingError("a reading is a JSON object")
    missing = [f for f in ("timestamp", "device_id", "measurement_value") if f not in data]
    if missing:
        raise InvalidReadingError(f"missing field(s): {', '.join(missing)}")
    device_id = data["device_id"]
    if not isinstance(device_id, str) or not _DEVICE_ID.match(device_id):
        raise InvalidReadingError("device_id must be 1-64 letters, digits or _.:-")
    moment = parse_timestamp(data["timestamp"], limits.not_after)
    try:
        return Reading(device_id, moment, parse_value(data["measurement_value"], limits.max_kwh))
    except AboveMaximumError as exc:
        register = Reading(device_id, moment, parse_value(data["measurement_value"], MAX_REGISTER_KWH))
        raise AboveMaximumError(str(exc), register) from None


@dataclass(frozen=True)
class Entry:
    """One reading of a message: valid (`reading`) or not (`error`), with what was sent."""

    index: int | None  # its place in a batch message; None for a message of one reading
    raw: Any
    reading: Reading | None = None
    error: str | None = None
    register: Reading | None = None  # with `error`: above an interval's maximum, valid for a register device


def parse_message(body: str, limits: Limits) -> list[Entry]:
    """A readings-queue message: one reading, or `{"readings": [...]}`, each entry judged alone.

    Raises InvalidReadingError only when the message as a whole is unusable (not JSON, too
    large, a batch whose `readings` is not a list, a single reading that is invalid).
    """
    if len(body) > MAX_MESSAGE_BYTES:
        raise InvalidReadingError("the message is larger than the queue allows")
    data = _loads(body)
    if isinstance(data, dict) and "readings" in data and "device_id" not in data:
        if data.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise InvalidReadingError(f"unsupported schema_version {data.get('schema_version')!r}")
        readings = data["readings"]
        if not isinstance(readings, list):
            raise InvalidReadingError("`readings` must be a list of readings")
        entries: list[Entry] = []
        for index, raw in enumerate(readings):
            try:
                entries.append(Entry(index, raw, reading=parse_reading(raw, limits)))
            except AboveMaximumError as exc:
                entries.append(Entry(index, raw, error=str(exc), register=exc.reading))
            except InvalidReadingError as exc:
                entries.append(Entry(index, raw, error=str(exc)))
        return entries
    if len(body) > MAX_READING_BYTES:
        raise InvalidReadingError("the message is larger than a reading can be")
    try:
        return [Entry(None, data, reading=parse_reading(data, limits))]
    except AboveMaximumError as exc:
        if exc.reading is None:
            raise
        return [Entry(None, data, error=str(exc), register=exc.reading)]


def group_by_hour(readings: list[tuple[str, Reading]]) -> OrderedDict[tuple[str, str], list[tuple[str, Reading]]]:
    """(message id, reading) pairs grouped by (device, hour); a repeated timestamp keeps the first."""
    groups: OrderedDict[tuple[str, str], list[tuple[str, Reading]]] = OrderedDict()
    seen: set[tuple[str, str]] = set()
    for message_id, reading in readings:
        if (reading.device_id, reading.key) in seen:
            continue
        seen.add((reading.device_id, reading.key))
        groups.setdefault((reading.device_id, reading.hour), []).append((message_id, reading))
    return groups


def crossed(total_before: Decimal, total_after: Decimal, limit_kwh: float) -> bool:
    """Whether this change made the hour's total exceed the limit for the first time."""
    limit = Decimal(str(limit_kwh))
    return total_before <= limit < total_after
