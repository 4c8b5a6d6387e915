"""Runs every `@app.schedule` handler on its schedule, as EventBridge would.

`rate(N unit)` fires every N units from the start; `cron(min hour dom month dow year)` fires
at each matching UTC minute (lists, ranges, steps, `*` and `?`; `L`, `W` and `#` are not
supported and refused at start). `time_scale` > 1 runs schedules faster than the wall
clock (tests use it so that `rate(1 minute)` fires every second).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from infra.local.lambdas import FunctionPool, InvocationError

log = logging.getLogger("ems.local.scheduler")

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}
_DOW = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1)}


class ScheduleError(ValueError):
    """A schedule expression this runtime cannot run."""


@dataclass(frozen=True)
class Schedule:
    handler: str
    expression: str


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The values a cron field allows; None for `*`/`?` (anything)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if "/" in text else start
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise ScheduleError(f"cron field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"unsupported cron value {text!r}")
    return int(text)


class CronExpression:
    """An EventBridge cron expression (six fields, UTC)."""

    def __init__(self, body: str) -> None:
        fields = body.split()
        if len(fields) != 6:
            raise ScheduleError(f"cron needs six fields, got {body!r}")
        self.minutes = _field(fields[0], 0, 59)
        self.hours = _field(fields[1], 0, 23)
        self.days = _field(fields[2], 1, 31)
        self.months = _field(fields[3], 1, 12, _MONTHS)
        self.weekdays = _field(fields[4], 1, 7, _DOW)
        self.years = _field(fields[5], 1970, 2199)

    def _day_matches(self, moment: dt.datetime) -> bool:
        weekday = moment.isoweekday() % 7 + 1  # EventBridge: 1 = Sunday
        return all(allowed is None or value in allowed for allowed, value in (
            (self.days, moment.day), (self.months, moment.month), (self.weekdays, weekday), (self.years, moment.year)))

    def matches(self, moment: dt.datetime) -> bool:
        return (self._day_matches(moment) and (self.hours is None or moment.hour in self.hours)
                and (self.minutes is None or moment.minute in self.minutes))

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        candidate = moment.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        horizon = candidate + dt.timedelta(days=366 * 2)
        while candidate < horizon:
            if not self._day_matches(candidate):  # no minute of this day fires: go to the next day
                candidate = candidate.replace(hour=0, minute=0) + dt.timedelta(days=1)
            elif self.matches(candidate):
                return candidate
            else:
                candidate += dt.timedelta(minutes=1)
        raise ScheduleError("cron expression never fires within two years")


def parse(expression: str) -> float | CronExpression:
    """A rate as its period in seconds, or a cron expression."""
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        return int(rate.group(1)) * _UNIT_S[rate.group(2).rstrip("s")]
    if expression.startswith("cron(") and expression.endswith(")"):
        return CronExpression(expression[5:-1])
    raise ScheduleError(f"unsupported schedule expression {expression!r}")


def scheduled_event(rule: str, region: str, moment: dt.datetime) -> dict[str, Any]:
    """EventBridge's 'Scheduled Event'."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{rule}"],
        "detail": {},
    }


class Scheduler:
    """One thread per schedule; each invocation runs in the schedules' function pool."""

    def __init__(
        self,
        schedules: list[Schedule],
        pool: FunctionPool,
        region: str,
        stop: threading.Event,
        time_scale: float = 1.0,
    ) -> None:
        self._parsed = [(s, parse(s.expression)) for s in schedules]
        self._pool = pool
        self._region = region
        self._stop = stop
        self._scale = max(time_scale, 1e-6)
        self._threads = [
            threading.Thread(target=self._run, args=(s, p), name=f"schedule-{s.handler}", daemon=True)
            for s, p in self._parsed
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout_s: float) -> None:
        for thread in self._threads:
            thread.join(timeout_s)

    def _run(self, schedule: Schedule, rule: float | CronExpression) -> None:
        started = time.monotonic()
        fired = 0
        # Schedule time: the wall clock, run `time_scale` times faster from the start.
        virtual = dt.datetime.now(dt.UTC)
        while not self._stop.is_set():
            if isinstance(rule, CronExpression):
                due = rule.next_after(virtual)
                wait_s = (due - virtual).total_seconds() / self._scale
            else:
                due = virtual + dt.timedelta(seconds=rule)
                wait_s = started + (fired + 1) * rule / self._scale - time.monotonic()
            if self._stop.wait(max(wait_s, 0)):
                return
            fired += 1
            virtual = due
            event = scheduled_event(schedule.handler, self._region, virtual)
            try:
                self._pool.invoke(schedule.handler, event)
            except InvocationError as exc:
                log.warning("scheduled %s failed: %s", schedule.handler, exc)
