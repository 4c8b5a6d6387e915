"""The run: walk the interval grid, send each interval's readings when simulated time has passed
its end, show progress on a terminal, and account for everything in a summary.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from simulator.clock import SimulatedClock, Stopper
from simulator.messages import Reading, format_timestamp
from simulator.sender import Sender, SenderError

LINGER_S = 0.25


class Meter(Protocol):
    """Where a device's values come from (`SyntheticMeter`, `CsvMeter`)."""

    @property
    def device_id(self) -> str: ...

    def kwh_at(self, interval_start: dt.datetime) -> float | None: ...


@dataclass(frozen=True)
class Plan:
    """Which intervals to send and when.

    Intervals start at `first`, `first + interval`, ...; one is due once the simulated clock
    (at `clock_origin` when the run starts, then `speed` times the wall clock) passes its end.
    Intervals already due at the start go out as fast as the queue takes them (a backfill).
    """

    first: dt.datetime
    interval: dt.timedelta
    clock_origin: dt.datetime
    speed: float = 1.0
    end: dt.datetime | None = None  # no interval starting at or after it
    last_due: dt.datetime | None = None  # no interval ending after it (--backfill-only)
    count: int | None = None  # readings at most


@dataclass(frozen=True)
class Summary:
    sent: int
    failed: int
    duration_s: float
    first: dt.datetime | None
    last: dt.datetime | None
    stopped: bool
    error: str | None = None

    @property
    def rate_per_s(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0

    def describe(self) -> str:
        text = (
            f"sent {self.sent}, failed {self.failed} in {self.duration_s:.2f} s "
            f"({self.rate_per_s:.1f} readings/s)"
        )
        if self.first is not None and self.last is not None:
            text += f"; simulated {format_timestamp(self.first)} to {format_timestamp(self.last)}"
        if self.error:
            text += f"; halted: {self.error}"
        return text + ("; stopped on request" if self.stopped else "")


class Progress:
    """One line redrawn with `\\r` on a terminal; silent otherwise (notes still go out)."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool | None = None, every_s: float = 0.2) -> None:
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.every_s = every_s
        self._started = time.monotonic()
        self._drawn_at = 0.0
        self._width = 0

    def update(self, sent: int, failed: int, simulated: dt.datetime | None, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn_at < self.every_s):
            return
        self._drawn_at = now
        elapsed_s = max(now - self._started, 1e-9)
        line = f"sent {sent}  {sent / elapsed_s:.1f}/s  simulated {format_timestamp(simulated) if simulated else '-'}"
        if failed:
            line += f"  failed {failed}"
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def clear(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def note(self, text: str) -> None:
        """A message on its own line, above the progress line."""
        self.clear()
        print(text, file=self.stream, flush=True)


def run(plan: Plan, meters: Sequence[Meter], sender: Sender, stopper: Stopper, progress: Progress) -> Summary:
    """Send the plan's readings until it ends, the count is reached or a stop is requested."""
    started = time.monotonic()
    clock = SimulatedClock(plan.clock_origin, plan.speed)
    backfilling = plan.first + plan.interval <= plan.clock_origin
    produced = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    interval_start = plan.first
    error: str | None = None
    try:
        while not stopper.requested:
            due = interval_start + plan.interval
            if (plan.end is not None and interval_start >= plan.end) or (
                plan.last_due is not None and due > plan.last_due
            ):
                break
            if plan.count is not None and produced >= plan.count:
                break
            wait_s = clock.wall_seconds_until(due)
            if wait_s > 0:
                # A partial batch goes out before a real wait; at high speed the waits are tiny
                # and readings linger a moment to share a batch.
                if wait_s >= LINGER_S or sender.pending_age_s() >= LINGER_S:
                    while sender.pending:
                        sender.flush()
                if backfilling and not sender.pending:
                    backfilling = False
                    progress.note(f"caught up: {sender.stats.sent} readings sent; now in real time (x{plan.speed:g})")
                progress.update(sender.stats.sent, sender.stats.failed, last, force=wait_s >= LINGER_S)
                if not stopper.sleep(wait_s):
                    break
            for meter in meters:
                kwh = meter.kwh_at(interval_start)
                if kwh is None:
                    continue
                sender.add(Reading(interval_start, meter.device_id, kwh))
                produced += 1
                if plan.count is not None and produced >= plan.count:
                    break
            first = first or interval_start
            last = interval_start
            progress.update(sender.stats.sent, sender.stats.failed, last)
            interval_start += plan.interval
        if stopper.requested:
            progress.note("stopping: sending the current batch")
        while sender.pending:
            sender.flush()
    except SenderError as exc:
        error = str(exc)
        sender.stats.failed += sender.drop_pending()
    finally:
        progress.clear()
    return Summary(
        sender.stats.sent, sender.stats.failed, time.monotonic() - started, first, last, stopper.requested, error
    )
