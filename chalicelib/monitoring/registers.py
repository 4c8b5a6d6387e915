"""Pure rules of meters that report a cumulative register (`reading_kind` "register").

A register reading's value is the meter's running total in kWh. The energy of the interval
ending at a reading is its value minus the value of the device's latest earlier reading,
counted in the clock hour (UTC) that contains the reading; the first reading is a baseline
and counts nothing. A lower value is a reset (the interval counts the new value), or, when
the register's maximum is known and the previous value was within 1% of it, a rollover (the
interval counts `max - previous + value`). Totals are always computed from the readings in
time order, so the order in which they arrive changes nothing.

No I/O here; everything takes values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from chalicelib.monitoring.readings import hour_key

ROLLOVER_MARGIN = Decimal("0.01")  # a previous value within 1% of the maximum makes a drop a rollover


class Step(Enum):
    """How the interval ending at a reading was counted."""

    BASELINE = "baseline"  # the device's first reading: nothing counted
    RISE = "rise"  # value - previous
    RESET = "reset"  # a drop: the meter restarted from zero, the interval counts the new value
    ROLLOVER = "rollover"  # a drop near the maximum: max - previous + value


@dataclass(frozen=True)
class HourEnergy:
    """What one clock hour counts from a register's readings."""

    hour: str
    total_kwh: Decimal
    reading_count: int
    reset: bool  # a reading of this hour was a reset (not a rollover)


def interval_energy(previous: Decimal | None, value: Decimal, max_kwh: Decimal | None) -> tuple[Decimal, Step]:
    """The energy of the interval ending at a reading of `value` whose predecessor read `previous`."""
    if previous is None:
        return Decimal(0), Step.BASELINE
    if value >= previous:
        return value - previous, Step.RISE
    if max_kwh is not None and max_kwh > 0 and previous >= max_kwh * (1 - ROLLOVER_MARGIN) and previous <= max_kwh:
        return max_kwh - previous + value, Step.ROLLOVER
    return value, Step.RESET


def merge(known: Mapping[dt.datetime, Decimal], arriving: Iterable[tuple[dt.datetime, Decimal]]
          ) -> tuple[dict[dt.datetime, Decimal], list[dt.datetime]]:
    """The readings after `arriving` joins `known`, and the times that were new. A reading is
    unique by its time: a repeat (a redelivery, a replay, a second value sent for the same
    time) keeps the value counted first."""
    merged = dict(known)
    new: list[dt.datetime] = []
    for moment, value in arriving:
        if moment not in merged:
            merged[moment] = value
            new.append(moment)
    return merged, new


def hourly(readings: Mapping[dt.datetime, Decimal], max_kwh: Decimal | None,
           before: tuple[dt.datetime, Decimal] | None = None) -> dict[str, HourEnergy]:
    """Each hour's energy from a device's register readings (aware datetimes to values), taken in
    time order. `before` is the device's latest reading earlier than all of them, if any: the
    first of `readings` then counts against it instead of being a baseline."""
    ordered = sorted(readings.items())
    if before is not None and ordered and before[0] >= ordered[0][0]:
        raise ValueError("`before` must be earlier than every reading")
    previous = before[1] if before is not None else None
    totals: dict[str, tuple[Decimal, int, bool]] = {}
    for moment, value in ordered:
        kwh, step = interval_energy(previous, value, max_kwh)
        hour = hour_key(moment)
        total, count, reset = totals.get(hour, (Decimal(0), 0, False))
        totals[hour] = (total + kwh, count + 1, reset or step is Step.RESET)
        previous = value
    return {hour: HourEnergy(hour, total, count, reset) for hour, (total, count, reset) in totals.items()}
