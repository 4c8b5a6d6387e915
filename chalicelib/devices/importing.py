"""Meters from a CSV file: the file read into rows, each valid or rejected with its reasons.

The file is UTF-8 text (a byte-order mark is allowed) with the header COLUMNS in any order; a
row's `owners` are usernames separated by `;`. A row is rejected on its own (the others go on):
a wrong number of fields, a formula-looking cell (one a spreadsheet would run: `=`, `+`, `-`,
`@`, a tab or a carriage return first), a field its rule refuses, a serial that appears on
another row of the same file. A file that cannot be read as CSV, or whose header is not this
one, is refused whole; so is one with more than MAX_ROWS rows (split it).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field, StringConstraints

from chalicelib import errors
from chalicelib.devices.models import Limit, Name, Serial, Strict, Text, Timezone
from chalicelib.platform.csvcells import formula_like, is_number

COLUMNS = ("serial", "name", "address", "max_hourly_kwh", "timezone", "owners")
MAX_ROWS = 1_000
MAX_OWNERS = 50

Username = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class ImportRow(Strict):
    serial: Serial
    name: Name
    address: Text = ""
    max_hourly_kwh: Limit
    timezone: Timezone | None = None
    owners: list[Username] = Field(default_factory=list, max_length=MAX_OWNERS)


@dataclass(frozen=True)
class Row:
    """One data row of the file: `number` counts data rows from 1 (the header is not one)."""

    number: int
    serial: str | None
    values: ImportRow | None = None
    reasons: list[errors.FieldError] = field(default_factory=list)


def read(body: bytes) -> list[Row]:
    """The rows of a CSV file, each valid (`values`) or with its `reasons`; a ValidationError
    for a file that is not CSV or has another header, PayloadTooLargeError beyond MAX_ROWS."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise errors.ValidationError("The file is not UTF-8 text.", [errors.FieldError("body", str(exc))]) from exc
    if "\ufffd" in text:  # what bytes that are not UTF-8 became on their way as text
        raise errors.ValidationError("The file is not UTF-8 text.",
                                     [errors.FieldError("body", "holds bytes that are not UTF-8")])
    if "\x00" in text:
        raise errors.ValidationError("The file is not CSV text.", [errors.FieldError("body", "contains NUL bytes")])
    try:
        lines = [cells for cells in csv.reader(io.StringIO(text, newline=""), strict=True)
                 if any(cell.strip() for cell in cells)]
    except csv.Error as exc:
        raise errors.ValidationError("The file is not CSV.", [errors.FieldError("body", str(exc))]) from exc
    if not lines:
        raise errors.ValidationError("The file is empty.", [errors.FieldError("header", "missing")])
    header = [cell.strip().lower() for cell in lines[0]]
    _check_header(header)
    if len(lines) - 1 > MAX_ROWS:
        raise errors.PayloadTooLargeError(
            f"At most {MAX_ROWS} rows are imported in one request; this file has {len(lines) - 1}. Split it.")
    rows = [_row(number, header, cells) for number, cells in enumerate(lines[1:], start=1)]
    return _without_repeated_serials(rows)


def _check_header(header: list[str]) -> None:
    problems = [errors.FieldError("header", f"unknown column '{name}'") for name in header if name not in COLUMNS]
    problems += [errors.FieldError("header", f"missing column '{name}'") for name in COLUMNS if name not in header]
    problems += [errors.FieldError("header", f"repeated column '{name}'")
                 for name in dict.fromkeys(header) if header.count(name) > 1]
    if problems:
        raise errors.ValidationError(f"The header must name the columns {','.join(COLUMNS)}.", problems)


def _row(number: int, header: list[str], cells: list[str]) -> Row:
    cells_of = dict(zip(header, cells, strict=False))
    serial = cells_of.get("serial", "").strip() or None
    if len(cells) != len(header):
        return Row(number, serial, reasons=[errors.FieldError("row", f"{len(cells)} fields, expected {len(header)}")])
    formulas = [errors.FieldError(name, f"looks like a formula (starts with {cell[:1]!r})")
                for name, cell in cells_of.items()
                if formula_like(cell) and not (name == "max_hourly_kwh" and is_number(cell))]  # -1: its own rule
    if formulas:
        return Row(number, serial, reasons=formulas)
    data: dict[str, object] = {name: cell.strip() for name, cell in cells_of.items()}
    data["owners"] = [name.strip() for name in cells_of["owners"].split(";") if name.strip()]
    data["timezone"] = data["timezone"] or None
    try:
        return Row(number, serial, values=errors.validate(ImportRow, data))
    except errors.ValidationError as exc:
        return Row(number, serial, reasons=exc.details)


def _without_repeated_serials(rows: list[Row]) -> list[Row]:
    """Rows whose serial another row of the file has too are all rejected: which one is meant?"""
    seen: dict[str, list[int]] = {}
    for row in rows:
        if row.values is not None:
            seen.setdefault(row.values.serial, []).append(row.number)
    repeated = {serial: numbers for serial, numbers in seen.items() if len(numbers) > 1}
    return [
        Row(row.number, row.serial, reasons=[errors.FieldError(
            "serial", f"'{row.values.serial}' is on rows {', '.join(map(str, repeated[row.values.serial]))}")])
        if row.values is not None and row.values.serial in repeated else row
        for row in rows
    ]
