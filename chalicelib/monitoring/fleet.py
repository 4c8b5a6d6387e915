"""The fleet view for admins: each meter's state, most severe first, and the fleet's exact counts.

A meter is in one state, the first that holds of:
- `over_limit`: its total of the current hour went over its limit;
- `silent`: the silent rule raised its silence and no reading came since (the check runs every
  minute, so a meter shows silent within about a minute of its deadline);
- `never_reported`: no reading was ever counted;
- `reporting`: any other.

Every state is kept by the path that changes it (device events, ingestion, the silent check) in
indexes of the replica sorted by name, so a page reads what it shows: its rows, one query a row
for the hours of its day, and the counts of the states that are not `reporting` (the fleet's
count minus theirs is the rest). Nothing here reads the whole fleet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.monitoring import calendar
from chalicelib.monitoring.domain import HourTotals
from chalicelib.monitoring.readings import hour_key, parse_hour_key
from chalicelib.platform.pagination import bad_cursor
from chalicelib.tariffs import Bill, Schedule

FleetState = Literal["over_limit", "silent", "never_reported", "reporting"]
STATES: tuple[FleetState, ...] = ("over_limit", "silent", "never_reported", "reporting")
_PARALLEL_READS = 8


class FleetQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: FleetState | None = None
    q: str | None = Field(default=None, min_length=1, max_length=64, description="A name prefix, without case.")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=2048)


class FleetSummary(BaseModel):
    devices: int
    reporting: int
    over_limit: int
    silent: int
    never_reported: int
    open_alerts: int


class FleetRow(BaseModel):
    device_id: str
    name: str
    state: FleetState
    last_reading_at: str | None
    hour_kwh: float | None
    today_kwh: float | None
    today_cost: float | None = Field(description="Today's hours at their own prices; null when some had none.")
    currency: str | None
    max_hourly_kwh: float
    open_alerts: int


class FleetPage(BaseModel):
    summary: FleetSummary
    items: list[FleetRow]
    next_cursor: str | None


class Member(Protocol):
    """A meter as the fleet's indexes hold it."""

    @property
    def device_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def max_hourly_kwh(self) -> float: ...

    @property
    def timezone(self) -> str: ...


class FleetIndex(Protocol):
    """The replica's fleet indexes (see `replica.DynamoFleetIndex`)."""

    def devices(self) -> int: ...

    def members(self, state: str, hour: str, prefix: str | None, limit: int,
                cursor: str | None) -> tuple[Sequence[Member], str | None]: ...

    def count(self, state: str, hour: str) -> int: ...

    def prices(self, device_ids: Sequence[str]) -> dict[str, Schedule]:
        """The prices of these meters (unknown ones left out)."""
        ...


class Fleet:
    """`open_alerts` is the alerts context's count of the feed's unacknowledged alerts by device."""

    def __init__(self, open_alerts: Callable[[], dict[str, int]], index: FleetIndex | None = None,
                 hours: HourTotals | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        from chalicelib.monitoring.replica import DynamoFleetIndex
        from chalicelib.monitoring.totals import DynamoHourTotals

        self._open_alerts = open_alerts
        self._index: FleetIndex = index or DynamoFleetIndex()
        self._hours: HourTotals = hours or DynamoHourTotals()
        self._clock = clock

    def page(self, query: FleetQuery) -> FleetPage:
        now = self._clock()
        hour = hour_key(now)
        phases = (query.state,) if query.state else STATES
        phase, start = _decode(query.cursor, phases)
        found: list[tuple[FleetState, Member]] = []
        next_cursor = None
        for current in phases[phases.index(phase):]:
            members, rest = self._index.members(current, hour, query.q, query.limit - len(found), start)
            found += [(current, m) for m in members]
            start = None
            if rest is not None:
                next_cursor = f"{current}.{rest}"
                break
            if len(found) >= query.limit:
                following = phases.index(current) + 1
                next_cursor = f"{phases[following]}." if following < len(phases) else None
                break
        open_alerts = self._open_alerts()
        prices = self._index.prices([m.device_id for _, m in found])
        with ThreadPoolExecutor(max_workers=_PARALLEL_READS) as pool:
            rows = list(pool.map(lambda pair: self._row(pair[0], pair[1], now, open_alerts.get(pair[1].device_id, 0),
                                                        prices.get(pair[1].device_id)), found))
        return FleetPage(summary=self._summary(hour, open_alerts), items=rows, next_cursor=next_cursor)

    def _summary(self, hour: str, open_alerts: dict[str, int]) -> FleetSummary:
        devices = self._index.devices()
        over = self._index.count("over_limit", hour)
        silent = self._index.count("silent", hour)
        never = self._index.count("never_reported", hour)
        return FleetSummary(devices=devices, reporting=max(devices - over - silent - never, 0), over_limit=over,
                            silent=silent, never_reported=never, open_alerts=sum(open_alerts.values()))

    def _row(self, state: FleetState, member: Member, now: dt.datetime, open_alerts: int,
             prices: Schedule | None) -> FleetRow:
        """A row with its meter's day: the hours of its local today (one query), each at its own
        price, and its latest hour when it has none today (one more)."""
        last_reading_at, hour_kwh, today_kwh = None, None, None
        bill = Bill()
        if state != "never_reported":
            local_today = calendar.local_day(now, member.timezone)
            day_start, _ = calendar.day_bounds(local_today, member.timezone)
            today = list(self._hours.newest_first(member.device_id, hour_key(day_start), hour_key(now), 25))
            today_kwh = float(sum((h.total_kwh for h in today), Decimal(0)))
            if prices is not None:
                bill.priced_day(*prices.priced_on(local_today))
                for h in today:
                    bill.add(h.total_kwh, prices.price_at(parse_hour_key(h.hour_start)))
            latest = today[0] if today else self._hours.latest(member.device_id)
            if latest is not None:
                last = latest.last_reading()
                last_reading_at = last.isoformat().replace("+00:00", "Z") if last else None
                hour_kwh = float(latest.total_kwh) if latest.hour_start == hour_key(now) else None
        return FleetRow(device_id=member.device_id, name=member.name, state=state, last_reading_at=last_reading_at,
                        hour_kwh=hour_kwh, today_kwh=today_kwh,
                        today_cost=None if bill.total is None else round(float(bill.total), 6),
                        currency=bill.currency, max_hourly_kwh=member.max_hourly_kwh,
                        open_alerts=open_alerts)


def _decode(cursor: str | None, phases: tuple[FleetState, ...]) -> tuple[FleetState, str | None]:
    """A cursor `<state>.<where that state goes on>`: (state, its index cursor); 422 for any other."""
    if not cursor:
        return phases[0], None
    state, _, rest = cursor.partition(".")
    for phase in phases:
        if phase == state:
            return phase, rest or None
    raise bad_cursor()
