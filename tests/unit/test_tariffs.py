"""Time-of-use tariffs: which rate prices an hour (at its local start), weekends, DST days, the
switch of tariff at local midnight, the flat rate before the first tariff, and the contract's rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from chalicelib.monitoring import calendar
from chalicelib.tariffs import MAX_RATES, Bill, Price, Schedule, Tariff, Tariffs
from tests.tariff_examples import TWO_PERIODS

TARIFFS = TypeAdapter(Tariffs)


def schedule(timezone: str = "Europe/Bucharest", tariffs: list[dict[str, Any]] | None = None,
             flat: float | None = None, currency: str | None = None) -> Schedule:
    return Schedule(TARIFFS.validate_python(TWO_PERIODS if tariffs is None else tariffs), flat, currency, timezone)


def local(text: str, timezone: str = "Europe/Bucharest") -> dt.datetime:
    """A local wall time as the UTC instant it is (the first of two in a repeated hour)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(timezone)).astimezone(dt.UTC)


def price(value: str, currency: str | None = "EUR") -> Price:
    return Price(Decimal(value), currency)


# --- which rate applies -------------------------------------------------------------------


@pytest.mark.parametrize(("wall", "expected"), [
    ("2026-01-14 00:00", "0.12"),  # a Wednesday
    ("2026-01-14 16:00", "0.12"),
    ("2026-01-14 17:00", "0.35"),  # the rate starts at the hour's start: it applies
    ("2026-01-14 20:00", "0.35"),
    ("2026-01-14 21:00", "0.12"),
    ("2026-01-14 23:00", "0.12"),
])
def test_an_hour_is_priced_by_the_rate_in_force_at_its_local_start(wall: str, expected: str) -> None:
    assert schedule().price_at(local(wall)) == price(expected)


def test_a_rate_that_starts_inside_an_hour_prices_the_next_hour_not_that_one() -> None:
    tariffs = [{"from": "2026-01-01", "currency": "EUR",
                "rates": [{"start": "00:00", "price_per_kwh": 1}, {"start": "17:30", "price_per_kwh": 2}]}]
    prices = schedule("UTC", tariffs)
    assert prices.price_at(local("2026-01-14 17:00", "UTC")) == price("1")
    assert prices.price_at(local("2026-01-14 18:00", "UTC")) == price("2")


def test_in_a_half_hour_zone_an_hour_starts_at_half_past_and_takes_the_rate_in_force_then() -> None:
    tariffs = [{"from": "2026-01-01", "currency": "INR",
                "rates": [{"start": "00:00", "price_per_kwh": 5}, {"start": "17:30", "price_per_kwh": 9}]}]
    hours = calendar.day_hours(dt.date(2026, 1, 14), "Asia/Kolkata")
    prices = schedule("Asia/Kolkata", tariffs)
    by_start = {calendar.local_iso(h, "Asia/Kolkata")[11:16]: prices.price_at(h) for h in hours}
    assert "17:00" not in by_start
    assert by_start["16:30"] == price("5", "INR")
    assert by_start["17:30"] == price("9", "INR")


@pytest.mark.parametrize(("wall", "expected"), [
    ("2026-01-17 00:00", "0.10"),  # Saturday
    ("2026-01-17 18:00", "0.10"),
    ("2026-01-18 23:00", "0.10"),  # Sunday
    ("2026-01-19 00:00", "0.12"),  # Monday
    ("2026-01-19 18:00", "0.35"),
    ("2026-01-16 23:00", "0.12"),  # Friday night
])
def test_weekend_rates_apply_on_local_saturdays_and_sundays(wall: str, expected: str) -> None:
    assert schedule().price_at(local(wall)) == price(expected)


def test_weekends_follow_the_local_date_not_the_utc_one() -> None:
    # Saturday 01:00 in Bucharest is still Friday 23:00 in UTC.
    saturday = local("2026-01-17 01:00")
    assert saturday.weekday() == 4
    assert schedule().price_at(saturday) == price("0.10")


def test_without_weekend_rates_a_weekend_day_takes_the_days_rates() -> None:
    assert schedule().price_at(local("2026-03-07 18:00")) == price("0.20")  # a Saturday under the second tariff


def test_a_new_tariff_starts_at_local_midnight_of_its_from_date() -> None:
    prices = schedule()
    # 2026-03-01 00:00 in Bucharest is 2026-02-28 22:00 UTC: the new tariff applies already.
    assert prices.price_at(local("2026-02-28 23:00")) == price("0.10")  # a Saturday of the first tariff
    assert prices.price_at(local("2026-03-01 00:00")) == price("0.20")
    assert prices.price_at(dt.datetime(2026, 2, 28, 21, tzinfo=dt.UTC)) == price("0.10")
    assert prices.price_at(dt.datetime(2026, 2, 28, 22, tzinfo=dt.UTC)) == price("0.20")


def test_the_effective_switch_follows_the_device_zone() -> None:
    tariffs = [{"from": "2026-03-01", "currency": "USD", "rates": [{"start": "00:00", "price_per_kwh": 0.2}]}]
    new_york = schedule("America/New_York", tariffs)
    # 2026-03-01 03:00 UTC is still 2026-02-28 in New York: before any tariff.
    assert new_york.price_at(dt.datetime(2026, 3, 1, 3, tzinfo=dt.UTC)) is None
    assert new_york.price_at(dt.datetime(2026, 3, 1, 5, tzinfo=dt.UTC)) == price("0.2", "USD")


def test_spring_forward_day_prices_its_23_hours_by_their_local_starts() -> None:
    tariffs = [{"from": "2026-01-01", "currency": "EUR",
                "rates": [{"start": "00:00", "price_per_kwh": 1}, {"start": "03:30", "price_per_kwh": 2},
                          {"start": "05:00", "price_per_kwh": 3}]}]
    day = dt.date(2026, 3, 29)  # Bucharest: 03:00 becomes 04:00 (a Sunday, no weekend rates here)
    hours = calendar.day_hours(day, "Europe/Bucharest")
    prices = schedule(tariffs=tariffs)
    labels = [(calendar.local_iso(h, "Europe/Bucharest")[11:16], prices.price_at(h)) for h in hours]
    assert len(labels) == 23
    assert [lbl for lbl, _ in labels[:5]] == ["00:00", "01:00", "02:00", "04:00", "05:00"]
    # 04:00 is after the 03:30 step although no hour started at 03:30 that day.
    assert [p.per_kwh for _, p in labels[:5] if p] == [Decimal(1), Decimal(1), Decimal(1), Decimal(2), Decimal(3)]


def test_fall_back_day_prices_the_repeated_hour_twice_at_its_rate() -> None:
    tariffs = [{"from": "2026-01-01", "currency": "EUR",
                "rates": [{"start": "00:00", "price_per_kwh": 1}, {"start": "03:00", "price_per_kwh": 2},
                          {"start": "04:00", "price_per_kwh": 3}]}]
    day = dt.date(2026, 10, 25)  # Bucharest: 04:00 goes back to 03:00
    hours = calendar.day_hours(day, "Europe/Bucharest")
    prices = schedule(tariffs=tariffs)
    labels = [(calendar.local_iso(h, "Europe/Bucharest")[11:16], prices.price_at(h)) for h in hours]
    assert len(labels) == 25
    repeated = [p for lbl, p in labels if lbl == "03:00"]
    assert repeated == [price("2"), price("2")]
    assert [p for lbl, p in labels if lbl == "04:00"] == [price("3")]


# --- before the first tariff, and the flat shorthand --------------------------------------


def test_before_the_first_tariff_an_hour_has_no_price_without_a_flat_rate() -> None:
    assert schedule().price_at(local("2025-12-31 23:00")) is None
    assert schedule().priced_on(dt.date(2025, 12, 31)) == (False, None)


def test_the_flat_rate_applies_before_the_first_tariff() -> None:
    prices = schedule(flat=0.5, currency="RON")
    assert prices.price_at(local("2025-12-31 23:00")) == price("0.5", "RON")
    assert prices.price_at(local("2026-01-01 00:00")) == price("0.12")
    assert prices.priced_on(dt.date(2025, 12, 31)) == (True, "RON")


def test_with_no_tariffs_the_flat_rate_applies_at_every_date() -> None:
    prices = schedule(tariffs=[], flat=0.25, currency="EUR")
    assert prices.price_at(local("2001-06-01 12:00")) == price("0.25")
    assert prices.price_at(local("2090-06-01 12:00")) == price("0.25")


def test_with_no_tariffs_and_no_flat_rate_nothing_is_priced() -> None:
    assert schedule(tariffs=[]).price_at(local("2026-06-01 12:00")) is None


# --- a period's bill ----------------------------------------------------------------------


def test_a_bill_in_one_currency_totals_its_hours_exactly() -> None:
    bill = Bill()
    bill.priced_day(True, "EUR")
    assert bill.add(Decimal("0.1"), price("0.35")) == Decimal("0.035")
    bill.add(Decimal("0.2"), price("0.12"))
    assert (bill.total, bill.currency, bill.uncosted_kwh) == (Decimal("0.059"), "EUR", 0)


def test_a_priced_period_without_readings_costs_zero_in_its_currency() -> None:
    bill = Bill()
    bill.priced_day(True, "EUR")
    assert (bill.total, bill.currency) == (Decimal(0), "EUR")


def test_a_period_without_any_price_has_no_cost() -> None:
    bill = Bill()
    bill.priced_day(False, None)
    assert (bill.total, bill.currency) == (None, None)


def test_counted_kwh_without_a_price_leave_the_total_unknown() -> None:
    bill = Bill()
    bill.priced_day(True, "EUR")
    bill.add(Decimal(1), price("0.2"))
    assert bill.add(Decimal("0.5"), None) is None
    assert (bill.total, bill.uncosted_kwh, bill.by_currency) == (None, Decimal("0.5"), {"EUR": Decimal("0.2")})


def test_a_period_in_two_currencies_has_no_single_total_but_one_per_currency() -> None:
    bill = Bill()
    bill.add(Decimal(1), price("0.2", "EUR"))
    bill.add(Decimal(2), price("1", "RON"))
    assert (bill.total, bill.currency) == (None, None)
    assert bill.by_currency == {"EUR": Decimal("0.2"), "RON": Decimal(2)}


# --- the contract's rules -----------------------------------------------------------------


def test_the_issue_example_is_a_valid_tariff_list() -> None:
    tariffs = TARIFFS.validate_python(TWO_PERIODS)
    assert [t.from_ for t in tariffs] == [dt.date(2026, 1, 1), dt.date(2026, 3, 1)]
    assert TARIFFS.dump_python(tariffs, mode="json", by_alias=True, exclude_none=True) == TWO_PERIODS


def rates(*starts: str) -> list[dict[str, Any]]:
    return [{"start": s, "price_per_kwh": 0.1} for s in starts]


def tariff(from_: str = "2026-01-01", **fields: Any) -> dict[str, Any]:
    return {"from": from_, "currency": "EUR", "rates": rates("00:00"), **fields}


BAD: dict[str, tuple[list[dict[str, Any]], str]] = {
    "unsorted from": ([tariff("2026-03-01"), tariff("2026-01-01")], "sorted by from"),
    "the same from twice": ([tariff("2026-03-01"), tariff("2026-03-01")], "without overlap"),
    "first rate not at 00:00": ([tariff(rates=rates("00:30", "12:00"))], "must start at 00:00"),
    "weekend first rate not at 00:00": ([tariff(weekend_rates=rates("06:00"))], "must start at 00:00"),
    "rates out of order": ([tariff(rates=rates("00:00", "17:00", "09:00"))], "increasing order"),
    "two rates at one time": ([tariff(rates=rates("00:00", "17:00", "17:00"))], "increasing order"),
    "negative price": ([tariff(rates=[{"start": "00:00", "price_per_kwh": -0.1}])], "greater than or equal"),
    "NaN price": ([tariff(rates=[{"start": "00:00", "price_per_kwh": float("nan")}])], "finite"),
    "infinite price": ([tariff(rates=[{"start": "00:00", "price_per_kwh": float("inf")}])], "finite"),
    "49 rates a day": ([tariff(rates=rates(*[f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 49 * 29, 29)]))],
                       "at most 48"),
    "no rates": ([tariff(rates=[])], "at least 1"),
    "a time of 24:00": ([tariff(rates=rates("00:00", "24:00"))], "pattern"),
    "a time without minutes": ([tariff(rates=rates("00:00", "17"))], "pattern"),
    "a date that is not one": ([tariff("2026-02-30")], "date"),
    "a bad currency": ([tariff(currency="EURO")], "pattern"),
    "no currency": ([{"from": "2026-01-01", "rates": rates("00:00")}], "required"),
    "an unknown field": ([tariff(peak=True)], "Extra inputs"),
    "too many tariffs": ([tariff(f"2026-01-{d:02d}") for d in range(1, 26)], "at most 24"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_tariff_list_is_refused_with_the_rule_it_breaks(case: str) -> None:
    tariffs, message = BAD[case]
    with pytest.raises(ValidationError) as caught:
        TARIFFS.validate_python(tariffs)
    assert message in str(caught.value)


def test_the_rates_of_all_tariffs_together_are_bounded() -> None:
    day = rates(*[f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)])  # 48 a day
    many = [tariff(f"2026-01-{d:02d}", rates=day, weekend_rates=day) for d in range(1, 7)]  # 576 rates
    with pytest.raises(ValidationError) as caught:
        TARIFFS.validate_python(many)
    assert f"at most {MAX_RATES} rates" in str(caught.value)
    TARIFFS.validate_python(many[:5])  # 480: allowed


def test_a_tariff_reads_from_by_its_python_name_too() -> None:
    """Events written by the devices context name the field `from`; both spellings read."""
    assert Tariff.model_validate({"from_": "2026-01-01", "currency": "eur", "rates": rates("00:00")}).currency == "EUR"
