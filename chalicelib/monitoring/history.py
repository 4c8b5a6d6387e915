"""History for owners and admins: a day, a range beside the previous one, raw readings, CSV."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Literal, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, model_validator

from chalicelib import errors
from chalicelib.monitoring import calendar
from chalicelib.monitoring.domain import HourTotal, HourTotals
from chalicelib.monitoring.readings import EARLIEST, LATEST, hour_key, parse_hour_key
from chalicelib.platform import csvcells
from chalicelib.tariffs import Bill, Price, Schedule, Tariff

MAX_HOURLY_RANGE_DAYS = 62
MAX_DAILY_RANGE_DAYS = 731
MAX_READINGS_WINDOW_DAYS = 31
READINGS_PER_HOUR_PAGE = 6  # a meter's readings in an hour, at the usual ten minutes


def _in_history(moment: dt.datetime) -> dt.datetime:
    """An instant of the history (2000-2099), as UTC; a naive one is UTC."""
    try:
        moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError("is out of range") from exc
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must be from {EARLIEST.date()} to {(LATEST - dt.timedelta(days=1)).date()}")
    return moment


# Dates and instants a query may name: the span readings may have (wider ones would overflow the
# calendar arithmetic near year 1 and 9999, and can hold nothing).
HistoryDate = Annotated[dt.date, Field(ge=EARLIEST.date(), le=(LATEST - dt.timedelta(days=1)).date())]
HistoryMoment = Annotated[dt.datetime, AfterValidator(_in_history)]



class Metered(Protocol):
    """What the history needs of a device (the devices context's view of it fits)."""

    @property
    def id(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def max_hourly_kwh(self) -> float: ...
    @property
    def tariff_per_kwh(self) -> float | None: ...
    @property
    def currency(self) -> str | None: ...
    @property
    def tariffs(self) -> Sequence[Tariff]: ...

class ConsumptionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    date: HistoryDate | None = None
    from_: HistoryDate | None = Field(default=None, alias="from")
    to: HistoryDate | None = None
    granularity: Literal["hour", "day"] = "day"

    @model_validator(mode="after")
    def _one_view(self) -> ConsumptionQuery:
        if self.date is not None and (self.from_ or self.to):
            raise ValueError("give either date, or from and to")
        if (self.from_ is None) != (self.to is None):
            raise ValueError("from and to go together")
        if self.from_ and self.to and self.to < self.from_:
            raise ValueError("to is before from")
        return self


class CsvQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: HistoryDate = Field(alias="from")
    to: HistoryDate

    @model_validator(mode="after")
    def _ordered(self) -> CsvQuery:
        if self.to < self.from_:
            raise ValueError("to is before from")
        if (self.to - self.from_).days >= MAX_DAILY_RANGE_DAYS:
            raise ValueError(f"at most {MAX_DAILY_RANGE_DAYS} days")
        return self


class ReadingsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: HistoryMoment | None = Field(
        default=None, description=f"at most {MAX_READINGS_WINDOW_DAYS} days ago (default: one day ago)")
    limit: int = Field(default=200, ge=1, le=2000)


class HourOut(BaseModel):
    start: str
    kwh: float | None
    readings: int
    price_per_kwh: float | None = Field(description="The rate in force at the hour's local start; null: none.")
    cost: float | None = Field(description="kwh at price_per_kwh; null without a reading or a price.")
    reset: bool = Field(default=False, description="A register device's reading in this hour was lower than the one "
                                                   "before (a reset): the hour counts the new value, not a difference.")


class DayConsumption(BaseModel):
    device_id: str
    date: dt.date
    timezone: str
    unit: Literal["kWh"] = "kWh"
    hours: list[HourOut]
    total_kwh: float
    peak_hour: str | None
    max_hourly_kwh: float
    cost: float | None
    currency: str | None


class PointOut(BaseModel):
    start: str
    kwh: float | None
    cost: float | None = Field(description="Null without a reading, or when some of its kWh had no price.")
    currency: str | None


class CurrencyCost(BaseModel):
    currency: str | None
    cost: float


class Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: dt.date = Field(alias="from")
    to: dt.date
    points: list[PointOut]
    total_kwh: float
    cost: float | None
    currency: str | None


class RangeConsumption(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    device_id: str
    timezone: str
    granularity: Literal["hour", "day"]
    unit: Literal["kWh"] = "kWh"
    from_: dt.date = Field(alias="from")
    to: dt.date
    points: list[PointOut]
    total_kwh: float
    cost: float | None = Field(description="Null when some counted kWh had no price, or the range spans currencies.")
    currency: str | None
    costs: list[CurrencyCost] = Field(description="The cost in each currency in force over the range.")
    uncosted_kwh: float = Field(description="Counted kWh of hours without a price (before any tariff).")
    max_hourly_kwh: float
    previous: Period


class Consumption(RootModel[DayConsumption | RangeConsumption]):
    """A day view (`?date=`) or a range view (`?from=&to=&granularity=`)."""


class RawReading(BaseModel):
    timestamp: str
    kwh: float


class ReadingList(BaseModel):
    device_id: str
    items: list[RawReading]
    next_cursor: str | None = None


def _round(value: Decimal | float) -> float:
    return round(float(value), 6)


def _money(value: Decimal | None) -> float | None:
    return None if value is None else _round(value)


def schedule_of(device: Metered) -> Schedule:
    """The device's prices: its tariffs, and its flat rate before the first or when it has none."""
    return Schedule(device.tariffs, device.tariff_per_kwh, device.currency, device.timezone)


def _per_kwh(price: Price | None) -> float | None:
    return None if price is None else _round(price.per_kwh)


class History:
    """A device's history read from its hours (`hours`: DynamoDB unless given)."""

    def __init__(self, hours: HourTotals | None = None) -> None:
        from chalicelib.monitoring.totals import DynamoHourTotals

        self._hours: HourTotals = hours or DynamoHourTotals()

    def _stored(self, device_id: str, start: dt.datetime, end: dt.datetime) -> dict[str, HourTotal]:
        if end <= start:
            return {}
        last = end - dt.timedelta(hours=1)
        return {h.hour_start: h for h in self._hours.between(device_id, hour_key(start), hour_key(last))}


    def day(self, device: Metered, day_: dt.date) -> DayConsumption:
        """The device's local day, hour by hour; an hour without readings is null, not zero."""
        start, end = calendar.day_bounds(day_, device.timezone)
        stored = self._stored(device.id, start, end)
        prices = schedule_of(device)
        bill = Bill()
        bill.priced_day(*prices.priced_on(day_))
        hours: list[HourOut] = []
        total = Decimal(0)
        peak: tuple[Decimal, str] | None = None
        for moment in calendar.utc_hours(start, end):
            item = stored.get(hour_key(moment))
            label = calendar.local_iso(moment, device.timezone)
            price = prices.price_at(moment)
            if item is None:
                hours.append(HourOut(start=label, kwh=None, readings=0, price_per_kwh=_per_kwh(price), cost=None))
                continue
            cost = bill.add(item.total_kwh, price)
            hours.append(HourOut(start=label, kwh=_round(item.total_kwh), readings=item.reading_count,
                                 price_per_kwh=_per_kwh(price), cost=_money(cost), reset=item.reset))
            total += item.total_kwh
            if peak is None or item.total_kwh > peak[0]:
                peak = (item.total_kwh, label)
        return DayConsumption(
            device_id=device.id, date=day_, timezone=device.timezone, hours=hours, total_kwh=_round(total),
            peak_hour=peak[1] if peak else None, max_hourly_kwh=device.max_hourly_kwh,
            cost=_money(bill.total), currency=bill.currency,
        )


    def _points(self, device: Metered, first: dt.date, last: dt.date,
                granularity: str) -> tuple[list[PointOut], Decimal, Bill]:
        """The points of a range, its total and its bill: each counted hour costed at its own price."""
        start, _ = calendar.day_bounds(first, device.timezone)
        _, end = calendar.day_bounds(last, device.timezone)
        stored = self._stored(device.id, start, end)
        total = sum((h.total_kwh for h in stored.values()), Decimal(0))
        prices = schedule_of(device)
        bill = Bill()
        regimes = {d: prices.priced_on(d) for d in calendar.days(first, last)}
        for priced, currency in regimes.values():
            bill.priced_day(priced, currency)
        if granularity == "hour":
            points = []
            for m in calendar.utc_hours(start, end):
                item, price = stored.get(hour_key(m)), prices.price_at(m)
                cost = None if item is None else bill.add(item.total_kwh, price)
                points.append(PointOut(start=calendar.local_iso(m, device.timezone),
                                       kwh=None if item is None else _round(item.total_kwh), cost=_money(cost),
                                       currency=None if price is None else price.currency))
            return points, total, bill
        per_day: dict[dt.date, Decimal] = {}
        cost_per_day: dict[dt.date, Decimal | None] = {}
        for item in stored.values():
            moment = parse_hour_key(item.hour_start)
            local = calendar.local_day(moment, device.timezone)
            per_day[local] = per_day.get(local, Decimal(0)) + item.total_kwh
            cost = bill.add(item.total_kwh, prices.price_at(moment))
            so_far = cost_per_day.get(local, Decimal(0))
            cost_per_day[local] = None if cost is None or so_far is None else so_far + cost
        points = [
            PointOut(start=calendar.local_iso(calendar.day_bounds(d, device.timezone)[0], device.timezone),
                     kwh=_round(per_day[d]) if d in per_day else None, cost=_money(cost_per_day.get(d)),
                     currency=regimes[d][1])
            for d in calendar.days(first, last)
        ]
        return points, total, bill


    def range_view(self, device: Metered, first: dt.date, last: dt.date, granularity: str) -> RangeConsumption:
        """A range by hour or day, with the previous period of the same length beside it."""
        length = (last - first).days + 1
        bound = MAX_HOURLY_RANGE_DAYS if granularity == "hour" else MAX_DAILY_RANGE_DAYS
        if length > bound:
            raise errors.ValidationError(f"A {granularity} range is at most {bound} days.",
                                         [errors.FieldError("to", f"at most {bound} days after from")])
        points, total, bill = self._points(device, first, last, granularity)
        prev_last = first - dt.timedelta(days=1)
        prev_first = prev_last - dt.timedelta(days=length - 1)
        prev_points, prev_total, prev_bill = self._points(device, prev_first, prev_last, granularity)
        previous = Period.model_validate({"from": prev_first, "to": prev_last, "points": prev_points,
                                          "total_kwh": _round(prev_total), "cost": _money(prev_bill.total),
                                          "currency": prev_bill.currency})
        return RangeConsumption.model_validate({
            "device_id": device.id, "timezone": device.timezone, "granularity": granularity, "from": first,
            "to": last, "points": points, "total_kwh": _round(total), "cost": _money(bill.total),
            "currency": bill.currency,
            "costs": [CurrencyCost(currency=c, cost=_round(v)) for c, v in bill.by_currency.items()],
            "uncosted_kwh": _round(bill.uncosted_kwh),
            "max_hourly_kwh": device.max_hourly_kwh, "previous": previous,
        })


    def consumption(self, device: Metered, query: ConsumptionQuery, today: dt.date) -> Consumption:
        if query.from_ is not None and query.to is not None:
            return Consumption(self.range_view(device, query.from_, query.to, query.granularity))
        return Consumption(self.day(device, query.date or today))


    def recent_readings(self, device: Metered, since: dt.datetime, limit: int, now: dt.datetime) -> ReadingList:
        """Raw readings since `since` (at most MAX_READINGS_WINDOW_DAYS before `now`), newest first.

        Hours are read newest first, a page at a time, until `limit` readings are found: the work
        follows the limit, not the span.
        """
        since = _in_history(since)
        if since < now - dt.timedelta(days=MAX_READINGS_WINDOW_DAYS):
            raise errors.ValidationError(f"since is at most {MAX_READINGS_WINDOW_DAYS} days ago.",
                                         [errors.FieldError("since", f"at most {MAX_READINGS_WINDOW_DAYS} days ago")])
        rows: list[tuple[str, Decimal]] = []
        page = min(max(limit // READINGS_PER_HOUR_PAGE + 1, 1), 100)
        for item in self._hours.newest_first(device.id, hour_key(since), hour_key(max(now, since)), page):
            rows += sorted(((k, v) for k, v in item.values.items() if dt.datetime.fromisoformat(k) >= since),
                           reverse=True)
            if len(rows) >= limit:
                break  # every later hour is older: what is newest is here
        return ReadingList(device_id=device.id,
                           items=[RawReading(timestamp=k, kwh=_round(v)) for k, v in rows[:limit]])


    def csv_export(self, device: Metered, first: dt.date, last: dt.date) -> str:
        """Hour rows of a local date range: local start, UTC start, kWh (empty when missing), readings,
        the price in force at the hour's local start, its cost and currency (empty when none)."""
        start, _ = calendar.day_bounds(first, device.timezone)
        _, end = calendar.day_bounds(last, device.timezone)
        stored = self._stored(device.id, start, end)
        prices = schedule_of(device)
        out = io.StringIO()
        writer = csvcells.writer(out)
        writer.writerow(["hour_start_local", "hour_start_utc", "kwh", "readings", "price_per_kwh", "cost", "currency"])
        for moment in calendar.utc_hours(start, end):
            item = stored.get(hour_key(moment))
            price = prices.price_at(moment)
            cost = None if item is None or price is None else _round(item.total_kwh * price.per_kwh)
            writer.writerow([
                calendar.local_iso(moment, device.timezone), hour_key(moment),
                "" if item is None else f"{_round(item.total_kwh)}", 0 if item is None else item.reading_count,
                "" if price is None else f"{_round(price.per_kwh)}", "" if cost is None else f"{cost}",
                "" if price is None else price.currency or "",
            ])
        return out.getvalue()
