"""Synthetic consumption: a daily pattern by local hour, times a base load, with seeded noise.

Pure: the value for a device and an interval depends only on the meter's settings, the seed and
the interval's start, so a run is reproducible and the order in which intervals are asked for
does not matter.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# (first hour, last hour, multiplier), local time, covering 0-23 once.
DAILY_PATTERN: tuple[tuple[int, int, float], ...] = (
    (0, 5, 0.5),  # night
    (6, 8, 1.2),  # morning
    (9, 16, 0.8),  # day
    (17, 21, 1.5),  # evening
    (22, 23, 0.7),  # late
)
DEFAULT_NOISE = 0.25


def hour_multiplier(local_hour: int) -> float:
    """How much of the base load a device uses in this local hour (0-23)."""
    for first, last, multiplier in DAILY_PATTERN:
        if first <= local_hour <= last:
            return multiplier
    raise ValueError(f"hour {local_hour} is not in 0-23")


def noisy(value: float, noise: float, rng: random.Random) -> float:
    """`value` times a random factor around 1 (standard deviation `noise`), never below zero."""
    return max(0.0, value * rng.gauss(1.0, noise))


@dataclass(frozen=True)
class SyntheticMeter:
    """A meter whose interval use follows `DAILY_PATTERN` in its own time zone."""

    device_id: str
    base_load_kwh: float
    seed: str
    noise: float = DEFAULT_NOISE
    timezone: str = "UTC"

    def kwh_at(self, interval_start: dt.datetime) -> float | None:
        """The kWh used in the interval starting at `interval_start` (aware)."""
        local_hour = interval_start.astimezone(ZoneInfo(self.timezone)).hour
        # A string seed is hashed with SHA-512 by `random`, so it is stable across processes.
        rng = random.Random(f"{self.seed}:{self.device_id}:{interval_start.astimezone(dt.UTC).isoformat()}")
        return noisy(self.base_load_kwh * hour_multiplier(local_hour), self.noise, rng)
