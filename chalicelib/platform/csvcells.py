"""CSV cells a spreadsheet will not run: a cell that starts like a formula (`=`, `+`, `-`, `@`, a
tab or a carriage return) is written with a leading apostrophe, so Excel, LibreOffice and Google
Sheets show it as text; numbers are left as they are. Every CSV the app writes goes through
`writer`; files it reads refuse such cells (`formula_like`)."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, Protocol

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def formula_like(cell: str) -> bool:
    """Whether a spreadsheet would read this cell as a formula."""
    return cell.startswith(FORMULA_START)


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def neutralised(cell: object) -> object:
    """The cell as it is safe to write: text that looks like a formula gets a leading apostrophe."""
    if isinstance(cell, str) and formula_like(cell) and not is_number(cell):
        return "'" + cell
    return cell


class Writer:
    """csv.writer whose rows are neutralised cell by cell."""

    def __init__(self, out: _Writable) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([neutralised(cell) for cell in row])


def writer(out: _Writable) -> Writer:
    return Writer(out)
