"""Costs in the history (in-memory hours): each hour at the rate in force at its local start, in the
day view, the range view (by hour and by day, with the previous period), and the CSV; a tariff list
changed re-costs the same history; dates before any tariff have no cost; mixed currencies have no
single total."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter

from chalicelib.monitoring.domain import WriteStats
from chalicelib.monitoring.history import History
from chalicelib.monitoring.readings import Reading, hour_key
from chalicelib.tariffs import Tariff, Tariffs
from tests.tariff_examples import TWO_PERIODS
from tests.unit.fakes import InMemoryHourTotals

ZONE = "Europe/Bucharest"


def tariffs(raw: list[dict[str, Any]]) -> tuple[Tariff, ...]:
    return tuple(TypeAdapter(Tariffs).validate_python(raw))


@dataclass(frozen=True)
class Device:
    id: str = "meter-1"
    timezone: str = ZONE
    max_hourly_kwh: float = 5.0
    tariff_per_kwh: float | None = None
    currency: str | None = None
    tariffs: tuple[Tariff, ...] = field(default_factory=lambda: tariffs(TWO_PERIODS))


@pytest.fixture
def hours() -> InMemoryHourTotals:
    return InMemoryHourTotals()


def count(hours: InMemoryHourTotals, wall: str, kwh: str, device_id: str = "meter-1") -> None:
    """A reading at a local wall time of the device's zone."""
    moment = dt.datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(ZONE)).astimezone(dt.UTC)
    hours.add(device_id, hour_key(moment), [Reading(device_id, moment, Decimal(kwh))], WriteStats())


def by_start(rows: list[Any]) -> dict[str, Any]:
    return {row.start[11:16]: row for row in rows}


def test_a_day_costs_each_hour_at_the_rate_in_force_at_its_local_start(hours: InMemoryHourTotals) -> None:
    count(hours, "2026-01-14 16:10", "1.0")  # Wednesday, 0.12
    count(hours, "2026-01-14 17:10", "2.0")  # 0.35
    count(hours, "2026-01-14 21:10", "0.5")  # 0.12
    day = History(hours).day(Device(), dt.date(2026, 1, 14))
    rows = by_start(day.hours)
    assert (rows["16:00"].price_per_kwh, rows["16:00"].cost) == (0.12, 0.12)
    assert (rows["17:00"].price_per_kwh, rows["17:00"].cost) == (0.35, 0.7)
    assert (rows["21:00"].price_per_kwh, rows["21:00"].cost) == (0.12, 0.06)
    assert (rows["18:00"].kwh, rows["18:00"].price_per_kwh, rows["18:00"].cost) == (None, 0.35, None)
    assert (day.total_kwh, day.cost, day.currency) == (3.5, 0.88, "EUR")


def test_a_weekend_day_costs_at_its_weekend_rates(hours: InMemoryHourTotals) -> None:
    count(hours, "2026-01-17 18:00", "2.0")  # Saturday
    day = History(hours).day(Device(), dt.date(2026, 1, 17))
    assert (by_start(day.hours)["18:00"].cost, day.cost) == (0.2, 0.2)


def test_a_dst_day_costs_its_23_hours_by_their_local_starts(hours: InMemoryHourTotals) -> None:
    device = Device(tariffs=tariffs([{"from": "2026-01-01", "currency": "EUR", "rates": [
        {"start": "00:00", "price_per_kwh": 1}, {"start": "03:30", "price_per_kwh": 2}]}]))
    count(hours, "2026-03-29 02:30", "1")  # before the jump: 1
    count(hours, "2026-03-29 04:30", "1")  # the hour after 02:00 starts at 04:00 local: 2
    day = History(hours).day(device, dt.date(2026, 3, 29))
    assert len(day.hours) == 23
    assert [h.cost for h in day.hours if h.kwh] == [1.0, 2.0]
    assert day.cost == 3.0


def test_a_day_before_any_tariff_has_no_cost_rather_than_a_wrong_one(hours: InMemoryHourTotals) -> None:
    count(hours, "2025-12-31 12:00", "1")
    day = History(hours).day(Device(), dt.date(2025, 12, 31))
    assert (day.total_kwh, day.cost, day.currency) == (1.0, None, None)
    assert by_start(day.hours)["12:00"].cost is None
    assert by_start(day.hours)["12:00"].price_per_kwh is None


def test_a_priced_day_without_readings_costs_zero(hours: InMemoryHourTotals) -> None:
    day = History(hours).day(Device(), dt.date(2026, 1, 14))
    assert (day.cost, day.currency) == (0.0, "EUR")


def test_a_flat_rate_alone_costs_every_date_as_before(hours: InMemoryHourTotals) -> None:
    count(hours, "2025-06-01 12:00", "2")
    day = History(hours).day(Device(tariffs=(), tariff_per_kwh=0.25, currency="RON"), dt.date(2025, 6, 1))
    assert (day.cost, day.currency, by_start(day.hours)["12:00"].cost) == (0.5, "RON", 0.5)


def test_a_range_by_day_switches_tariff_at_local_midnight(hours: InMemoryHourTotals) -> None:
    count(hours, "2026-02-28 23:30", "1")  # Saturday of the first tariff: 0.10
    count(hours, "2026-03-01 00:30", "1")  # the second tariff: 0.20
    view = History(hours).range_view(Device(), dt.date(2026, 2, 28), dt.date(2026, 3, 1), "day")
    assert [(p.kwh, p.cost, p.currency) for p in view.points] == [(1.0, 0.1, "EUR"), (1.0, 0.2, "EUR")]
    assert (view.cost, view.currency, view.uncosted_kwh) == (0.3, "EUR", 0.0)
    assert [(c.currency, c.cost) for c in view.costs] == [("EUR", 0.3)]


def test_a_range_by_hour_costs_each_hour(hours: InMemoryHourTotals) -> None:
    count(hours, "2026-01-14 17:10", "2")
    view = History(hours).range_view(Device(), dt.date(2026, 1, 14), dt.date(2026, 1, 14), "hour")
    costed = [(p.start[11:16], p.cost) for p in view.points if p.cost is not None]
    assert costed == [("17:00", 0.7)]
    assert view.cost == 0.7


def test_the_previous_period_is_costed_by_its_own_dates(hours: InMemoryHourTotals) -> None:
    count(hours, "2026-02-27 12:00", "1")  # Friday, first tariff: 0.12
    count(hours, "2026-03-02 12:00", "1")  # second tariff: 0.20
    view = History(hours).range_view(Device(), dt.date(2026, 3, 2), dt.date(2026, 3, 2), "day")
    assert (view.cost, view.previous.cost) == (0.2, 0.0)  # the previous period is 2026-03-01: no readings
    view = History(hours).range_view(Device(), dt.date(2026, 3, 1), dt.date(2026, 3, 4), "day")
    assert (view.cost, view.previous.cost, view.previous.currency) == (0.2, 0.12, "EUR")


def test_a_range_that_starts_before_any_tariff_has_no_total_but_says_what_it_knows(hours: InMemoryHourTotals) -> None:
    count(hours, "2025-12-31 12:00", "1")
    count(hours, "2026-01-01 12:00", "1")  # a Thursday: 0.12
    view = History(hours).range_view(Device(), dt.date(2025, 12, 31), dt.date(2026, 1, 1), "day")
    assert (view.total_kwh, view.cost, view.uncosted_kwh) == (2.0, None, 1.0)
    assert [(c.currency, c.cost) for c in view.costs] == [("EUR", 0.12)]
    assert [p.cost for p in view.points] == [None, 0.12]


def test_a_range_without_readings_before_the_first_tariff_is_still_costed(hours: InMemoryHourTotals) -> None:
    count(hours, "2026-01-01 12:00", "1")
    view = History(hours).range_view(Device(), dt.date(2025, 12, 31), dt.date(2026, 1, 1), "day")
    assert (view.cost, view.currency) == (0.12, "EUR")


def test_a_range_over_two_currencies_has_a_cost_per_currency_and_no_single_total(hours: InMemoryHourTotals) -> None:
    device = Device(tariffs=tariffs([
        {"from": "2026-01-01", "currency": "RON", "rates": [{"start": "00:00", "price_per_kwh": 1}]},
        {"from": "2026-01-02", "currency": "EUR", "rates": [{"start": "00:00", "price_per_kwh": 0.2}]}]))
    count(hours, "2026-01-01 12:00", "2")
    count(hours, "2026-01-02 12:00", "2")
    view = History(hours).range_view(device, dt.date(2026, 1, 1), dt.date(2026, 1, 2), "day")
    assert (view.cost, view.currency) == (None, None)
    assert [(c.currency, c.cost) for c in view.costs] == [("RON", 2.0), ("EUR", 0.4)]
    assert [(p.cost, p.currency) for p in view.points] == [(2.0, "RON"), (0.4, "EUR")]


def test_changing_the_tariffs_recosts_the_same_history(hours: InMemoryHourTotals) -> None:
    count(hours, "2026-01-14 17:10", "2")
    device = Device()
    assert History(hours).day(device, dt.date(2026, 1, 14)).cost == 0.7
    cheaper = replace(device, tariffs=tariffs([{"from": "2025-01-01", "currency": "EUR",
                                                "rates": [{"start": "00:00", "price_per_kwh": 0.05}]}]))
    assert History(hours).day(cheaper, dt.date(2026, 1, 14)).cost == 0.1
    assert History(hours).day(replace(device, tariffs=()), dt.date(2026, 1, 14)).cost is None


def test_the_csv_has_each_hours_price_cost_and_currency(hours: InMemoryHourTotals) -> None:
    count(hours, "2026-01-14 17:10", "2")
    text = History(hours).csv_export(Device(), dt.date(2026, 1, 14), dt.date(2026, 1, 14))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["hour_start_local", "hour_start_utc", "kwh", "readings", "price_per_kwh", "cost",
                             "currency"]
    by_local = {r["hour_start_local"][11:16]: r for r in rows}
    assert (by_local["17:00"]["kwh"], by_local["17:00"]["price_per_kwh"], by_local["17:00"]["cost"],
            by_local["17:00"]["currency"]) == ("2.0", "0.35", "0.7", "EUR")
    assert (by_local["18:00"]["kwh"], by_local["18:00"]["price_per_kwh"], by_local["18:00"]["cost"]) == ("", "0.35", "")
    before = History(hours).csv_export(Device(), dt.date(2025, 12, 31), dt.date(2025, 12, 31))
    assert {(r["price_per_kwh"], r["cost"], r["currency"]) for r in csv.DictReader(io.StringIO(before))} == {("", "", "")}
