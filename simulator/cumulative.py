"""Meter-register readings to interval consumption: the difference between consecutive readings.

A register only grows, except when it is reset (replaced meter, rollover): a reading below the
previous one is then taken as the consumption since the reset, so a value is never negative.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable

from simulator.csv_source import CsvRow


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
