"""Meter-register readings to interval consumption: the difference between consecutive readings.

A register only grows, except when it is reset (replaced meter, rollover): a reading below the
previous one is then taken as the consumption since the reset, so a value is never negative.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable

from simulator.csv_source import CsvRow
from simulator.runner import Meter


def register_differences(rows: Iterable[CsvRow]) -> list[CsvRow]:
    """Per device, the kWh used between each register reading and the next.

    Each result is stamped with the earlier reading's time (the start of the interval it
    measures), so a device's first reading yields nothing. Rows are taken in time order per
    device; a repeated timestamp keeps its first reading. The result is in time order.
    """
    by_device: dict[str, dict[dt.datetime, CsvRow]] = {}
    for row in rows:
        by_device.setdefault(row.device_id, {}).setdefault(row.timestamp, row)
    differences = []
    for device_rows in by_device.values():
        ordered = sorted(device_rows.values(), key=lambda row: row.timestamp)
        for previous, current in itertools.pairwise(ordered):
            used = current.value - previous.value if current.value >= previous.value else current.value
            differences.append(CsvRow(previous.timestamp, previous.device_id, used))
    differences.sort(key=lambda row: (row.timestamp, row.device_id))
    return differences


class RegisterMeter:
    """A register device's meter: it sends its running register (kWh) instead of each interval's use.

    The reading at an interval's start is `start_kwh` plus the use of every earlier interval since
    the first one asked for (`inner`'s values; a gap adds nothing and its end sends nothing), so the backend,
    counting the differences between consecutive registers, gets back `inner`'s use.
    """

    def __init__(self, inner: Meter, start_kwh: float, interval: dt.timedelta) -> None:
        self.device_id: str = inner.device_id
        self._inner = inner
        self._interval = interval
        self._origin: dt.datetime | None = None
        self._registers: list[float] = [start_kwh]  # the register at origin + i intervals

    def kwh_at(self, interval_start: dt.datetime) -> float | None:
        """The register at `interval_start`; None after an interval whose use `inner` lacks (a gap)."""
        if self._origin is None:
            self._origin = interval_start
        steps = (interval_start - self._origin) / self._interval
        if steps < 0 or steps != int(steps):
            raise ValueError("a register meter's intervals are asked from its first one on, on its grid")
        while len(self._registers) <= steps:
            moment = self._origin + (len(self._registers) - 1) * self._interval
            self._registers.append(round(self._registers[-1] + (self._inner.kwh_at(moment) or 0.0), 6))
        if steps and self._inner.kwh_at(interval_start - self._interval) is None:
            return None  # the use before this moment is unknown: a meter that sent nothing
        return self._registers[int(steps)]
