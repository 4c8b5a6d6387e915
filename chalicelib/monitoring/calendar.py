"""Days and ranges in a device's time zone, as lists of UTC hours. Pure functions.

A day is a day in the device's time zone, so a DST day has 23 or 25 hours; storage keys
are UTC hours. A local hour that exists twice (the repeated hour when clocks go back) is
two UTC hours and two entries.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.UTC


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants where the local `day` starts and the next one starts."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def utc_hours(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every UTC hour start in [start, end)."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += dt.timedelta(hours=1)
    hours = []
    moment = first
    while moment < end:
        hours.append(moment)
        moment += dt.timedelta(hours=1)
    return hours


def day_hours(day: dt.date, timezone: str) -> list[dt.datetime]:
    """The UTC hour starts of a local day (23, 24 or 25 of them)."""
    return utc_hours(*day_bounds(day, timezone))


def local_iso(moment: dt.datetime, timezone: str) -> str:
    """An instant as ISO-8601 with the device's offset, e.g. 2026-03-29T03:00:00+03:00."""
    return moment.astimezone(ZoneInfo(timezone)).isoformat()


def local_day(moment: dt.datetime, timezone: str) -> dt.date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every date from `first` to `last` inclusive."""
    count = (last - first).days + 1
    return [first + dt.timedelta(days=i) for i in range(max(count, 0))]
