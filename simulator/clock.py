"""Simulated time: durations, the interval grid, a clock running `speed` times the wall clock,
and sleeps that a stop request cuts short.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

UTC = dt.UTC
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    """`90s`, `10m`, `6h`, `2d`, `1w` or a sum such as `1d12h`; must be positive."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"invalid duration {text!r}: use e.g. 90s, 10m, 6h, 2d or 1d12h")
    seconds = sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return dt.timedelta(seconds=seconds)


def floor_to_interval(moment: dt.datetime, interval: dt.timedelta) -> dt.datetime:
    """The start of the interval (on a grid from midnight UTC) that contains `moment`."""
    moment = moment.astimezone(UTC)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + ((moment - midnight) // interval) * interval


@dataclass
class SimulatedClock:
    """Simulated time: `origin` at the wall time of creation, then `speed` times faster."""

    origin: dt.datetime
    speed: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    _wall_origin: float = field(init=False)

    def __post_init__(self) -> None:
        self._wall_origin = self.monotonic()

    def now(self) -> dt.datetime:
        return self.origin + dt.timedelta(seconds=(self.monotonic() - self._wall_origin) * self.speed)

    def wall_seconds_until(self, moment: dt.datetime) -> float:
        """Wall-clock seconds until the simulated clock reaches `moment` (0 when it has)."""
        return max(0.0, (moment - self.now()).total_seconds() / self.speed)


class Stopper:
    """A stop request (Ctrl-C) and sleeps that end early once it is made."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, slice_s: float = 0.1) -> None:
        self.requested = False
        self._sleep = sleep
        self._slice_s = slice_s

    def request(self) -> None:
        self.requested = True

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False when a stop was requested before or during the sleep."""
        remaining = seconds
        while not self.requested:
            if remaining <= 0:
                return True
            step = min(remaining, self._slice_s)
            self._sleep(step)
            remaining -= step
        return False
