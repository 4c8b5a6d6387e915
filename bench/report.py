"""The results: figures beside their baselines and targets, as a table and as JSON with the machine."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """One measured figure; `target` is checked on the value, or on value/baseline when `on_ratio`."""

    group: str
    name: str
    value: float | None
    unit: str = ""
    baseline: float | None = None
    baseline_name: str = ""
    target_op: str | None = None  # "<=" or ">="
    target: float | None = None
    on_ratio: bool = False
    decimals: int | None = None  # shown with this many decimals (where the third one matters)
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def target_text(self) -> str:
        if self.target_op is None or self.target is None:
            return ""
        return f"{self.target_op} {_number(self.target)}{'x' if self.on_ratio else ' ' + self.unit}".rstrip()

    @property
    def verdict(self) -> str:
        if self.target_op is None or self.target is None:
            return ""
        checked = self.ratio if self.on_ratio else self.value
        if checked is None:
            return "miss"
        ok = checked <= self.target if self.target_op == "<=" else checked >= self.target
        return "pass" if ok else "miss"

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "name": self.name, "value": self.value, "unit": self.unit,
            "baseline": self.baseline, "baseline_name": self.baseline_name, "ratio": self.ratio,
            "target": self.target_text or None, "result": self.verdict or None, "note": self.note or None,
            "details": self.details or None,
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.3g}" if magnitude < 1 else f"{value:.2f}"
    return f"{value:.2e}"


def table(figures: Sequence[Figure]) -> str:
    """An aligned text table: figure, value, baseline, ratio, target, pass/miss."""
    header = ("figure", "value", "baseline", "ratio", "target", "")
    rows: list[tuple[str, ...]] = []
    for f in figures:
        shown = f"{f.value:.{f.decimals}f}" if f.value is not None and f.decimals is not None else _number(f.value)
        value = f"{shown} {f.unit}".rstrip() if f.value is not None else "n/a"
        baseline = ""
        if f.baseline is not None:
            baseline = f"{_number(f.baseline)} {f.unit}".rstrip() + (f" ({f.baseline_name})" if f.baseline_name else "")
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else ""
        rows.append((f"{f.group}: {f.name}", value, baseline, ratio, f.target_text, f.verdict))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {1, 3}

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded)

    out = [line(header), line(["-" * w for w in widths])]
    previous = None
    for f, row in zip(figures, rows, strict=True):
        if previous is not None and f.group != previous:
            out.append("")
        previous = f.group
        out.append(line(row).rstrip())
    return "\n".join(out)


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, Python, date and load: what the numbers were measured on."""
    model = ""
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    memory_mb = None
    try:
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal:"):
                memory_mb = int(text.split()[1]) // 1024
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_mb": memory_mb,
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def write_json(path: Path, figures: Sequence[Figure], extra: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**extra, "figures": [f.as_dict() for f in figures]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str))
    tmp.replace(path)
