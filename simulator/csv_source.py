"""CSV replay: `timestamp,device_id,value` rows, read once and replayed by time of day.

A CSV meter maps each local time of day in the file (e.g. 20:10) to its value and answers
that value for the same time of day on every simulated day; a time the file lacks is a
missing reading. Replaying the file's own day (`--start` at its first row) sends its rows as
they are.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from simulator.messages import parse_timestamp

HEADER = ("timestamp", "device_id", "value")


class CsvFormatError(ValueError):
    """The file is not a valid readings CSV; the text names the line."""


@dataclass(frozen=True)
class CsvRow:
    """One row of the file: a value of `device_id` at `timestamp` (aware, UTC)."""

    timestamp: dt.datetime
    device_id: str
    value: float


def parse_rows(text: str, *, source: str = "<csv>") -> list[CsvRow]:
    """The rows of a CSV text with a `timestamp,device_id,value` header, in file order."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(cell.strip().lower() for cell in header) != HEADER:
        raise CsvFormatError(f"{source}:1: expected the header {','.join(HEADER)}")
    rows = []
    for cells in reader:
        line = reader.line_num
        if not cells or all(not cell.strip() for cell in cells) or cells[0].lstrip().startswith("#"):
            continue
        if len(cells) != len(HEADER):
            raise CsvFormatError(f"{source}:{line}: expected 3 fields, got {len(cells)}")
        timestamp, device_id, value = (cell.strip() for cell in cells)
        try:
            moment = parse_timestamp(timestamp)
        except ValueError as exc:
            raise CsvFormatError(f"{source}:{line}: {exc}") from None
        if not device_id:
            raise CsvFormatError(f"{source}:{line}: empty device_id")
        try:
            number = float(value)
        except ValueError:
            raise CsvFormatError(f"{source}:{line}: value {value!r} is not a number") from None
        if not math.isfinite(number) or number < 0:
            raise CsvFormatError(f"{source}:{line}: value {value!r} is not a finite number >= 0")
        rows.append(CsvRow(moment, device_id, number))
    return rows


def read_rows(path: Path) -> list[CsvRow]:
    """The rows of the CSV file at `path` (see `parse_rows`)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CsvFormatError(f"{path}: {exc.strerror or exc}") from None
    return parse_rows(text, source=str(path))


def rows_for_device(rows: Sequence[CsvRow], device_id: str) -> list[CsvRow]:
    """The rows of `device_id`; when the file holds none, those of the file's only device."""
    own = [row for row in rows if row.device_id == device_id]
    if own:
        return own
    devices = {row.device_id for row in rows}
    if len(devices) == 1:
        return list(rows)
    raise CsvFormatError(
        f"no rows for device {device_id!r}; the file holds {', '.join(sorted(devices)) or 'no rows'}"
    )


@dataclass(frozen=True)
class CsvMeter:
    """A meter that answers the value of the same local time of day in its rows."""

    device_id: str
    by_time_of_day: dict[tuple[int, int, int], float]
    timezone: str = "UTC"

    @classmethod
    def from_rows(cls, device_id: str, rows: Iterable[CsvRow], timezone: str = "UTC") -> CsvMeter:
        """The first value of each local time of day wins, as the backend keeps the first reading."""
        zone = ZoneInfo(timezone)
        table: dict[tuple[int, int, int], float] = {}
        for row in rows:
            table.setdefault(_time_of_day(row.timestamp, zone), row.value)
        return cls(device_id, table, timezone)

    def kwh_at(self, interval_start: dt.datetime) -> float | None:
        """The file's value at this local time of day, or None when the file has none."""
        return self.by_time_of_day.get(_time_of_day(interval_start, ZoneInfo(self.timezone)))


def _time_of_day(moment: dt.datetime, zone: ZoneInfo) -> tuple[int, int, int]:
    local = moment.astimezone(zone)
    return local.hour, local.minute, local.second
