"""What the AI is told of a user's meters: the price in force now (time of use included), and each
day's use and cost as the day view gives them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import TypeAdapter

from chalicelib.chat.context import describe
from chalicelib.tariffs import Tariff, Tariffs
from tests.tariff_examples import TWO_PERIODS


@dataclass(frozen=True)
class Meter:
    id: str = "m-1"
    name: str = "Kitchen"
    timezone: str = "Europe/Bucharest"
    max_hourly_kwh: float = 2.0
    tariff_per_kwh: float | None = None
    currency: str | None = None
    tariffs: Sequence[Tariff] = field(default_factory=tuple)


@dataclass(frozen=True)
class Hour:
    start: str
    kwh: float | None


@dataclass(frozen=True)
class Day:
    hours: Sequence[Hour]
    total_kwh: float
    peak_hour: str | None
    cost: float | None
    currency: str | None


def day_view(meter: Meter, day: dt.date) -> Day:
    return Day([Hour("18:00", 2.5), Hour("19:00", 1.0)], 3.5, "18:00", 1.05 if meter.currency or meter.tariffs else None,
               "EUR" if meter.currency or meter.tariffs else None)


def test_a_time_of_use_meter_is_described_with_the_price_in_force_now_and_each_days_cost() -> None:
    meter = Meter(tariffs=tuple(TypeAdapter(Tariffs).validate_python(TWO_PERIODS)))
    # A Monday in February, 17:30 in Bucharest: the evening peak price of the first tariff
    text = describe([meter], day_view, dt.datetime(2026, 2, 2, 15, 30, tzinfo=dt.UTC))
    assert "price now 0.35 EUR per kWh (prices change with the time of day or the date)" in text
    assert "today: 3.5 kWh, cost 1.05 EUR, peak hour 18:00, 1 hour(s) over the limit" in text


def test_a_flat_price_is_told_as_it_is_and_a_meter_without_prices_has_no_cost() -> None:
    now = dt.datetime(2026, 2, 2, 15, 30, tzinfo=dt.UTC)
    flat = describe([Meter(tariff_per_kwh=0.3, currency="RON")], day_view, now)
    assert "price now 0.3 RON per kWh;" in flat and "time of day" not in flat
    unpriced = describe([Meter()], day_view, now)
    assert "price" not in unpriced and "cost" not in unpriced and "today: 3.5 kWh, peak hour 18:00" in unpriced
    assert describe([], day_view, now) == "The user has no meters assigned."
