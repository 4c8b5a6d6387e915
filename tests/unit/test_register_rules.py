"""The pure rules of cumulative-register meters: differences, resets, rollovers, and totals that
do not depend on the order, the repeats or the replays in which readings arrive."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.monitoring.registers import HourEnergy, Step, hourly, interval_energy, merge

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 23, 20, 0, tzinfo=UTC)


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def d(value: str | int) -> Decimal:
    return Decimal(str(value))


def totals(result: dict[str, HourEnergy]) -> dict[str, Decimal]:
    return {hour: energy.total_kwh for hour, energy in result.items()}


def test_the_first_reading_is_a_baseline_and_counts_nothing() -> None:
    assert interval_energy(None, d("1234.5"), None) == (d(0), Step.BASELINE)


def test_a_rise_counts_the_difference() -> None:
    assert interval_energy(d("100.25"), d("101"), None) == (d("0.75"), Step.RISE)


def test_a_drop_is_a_reset_that_counts_the_new_value() -> None:
    assert interval_energy(d("5000"), d("2.5"), None) == (d("2.5"), Step.RESET)


def test_a_drop_from_within_one_percent_of_the_maximum_is_a_rollover() -> None:
    assert interval_energy(d("99995"), d("3"), d("100000")) == (d("8"), Step.ROLLOVER)
    assert interval_energy(d("99000"), d("1"), d("100000")) == (d("1001"), Step.ROLLOVER)


def test_a_drop_from_further_below_the_maximum_is_a_reset() -> None:
    assert interval_energy(d("98999"), d("3"), d("100000")) == (d("3"), Step.RESET)


def test_hours_count_the_differences_ending_in_them_and_mark_resets() -> None:
    # Given registers across two hours with a reset in the second
    readings = {at(10): d(100), at(40): d(101), at(70): d("102.5"), at(80): d(1), at(90): d(3)}
    # When the hours are computed
    result = hourly(readings, None)
    # Then the first reading counts nothing, the reset counts its value, and only its hour is marked
    assert totals(result) == {"2026-11-23T20:00:00Z": d(1), "2026-11-23T21:00:00Z": d("1.5") + d(1) + d(2)}
    assert [result[h].reset for h in sorted(result)] == [False, True]
    assert [result[h].reading_count for h in sorted(result)] == [2, 3]


def test_the_earlier_reading_given_makes_the_first_one_count() -> None:
    result = hourly({at(70): d(110)}, None, before=(at(50), d(100)))
    assert totals(result) == {"2026-11-23T21:00:00Z": d(10)}


def test_a_late_reading_between_two_counted_ones_moves_energy_between_their_hours() -> None:
    # Given a reading at 20:50 and the next at 21:10: the 10 kWh between them count in 21:00
    known = {at(50): d(100), at(70): d(110)}
    assert totals(hourly(known, None)) == {"2026-11-23T20:00:00Z": d(0), "2026-11-23T21:00:00Z": d(10)}
    # When a reading of 20:55 arrives late
    merged, new = merge(known, [(at(55), d(104))])
    # Then 4 kWh move to 20:00 and the sum is unchanged
    assert new == [at(55)]
    assert totals(hourly(merged, None)) == {"2026-11-23T20:00:00Z": d(4), "2026-11-23T21:00:00Z": d(6)}


def test_a_repeated_reading_keeps_the_value_counted_first() -> None:
    known = {at(10): d(100), at(20): d(105)}
    merged, new = merge(known, [(at(20), d(999)), (at(10), d(100))])
    assert new == []
    assert merged == known


def test_a_reading_earlier_than_the_given_one_before_is_refused() -> None:
    try:
        hourly({at(10): d(1)}, None, before=(at(10), d(0)))
    except ValueError:
        return
    raise AssertionError("a `before` not earlier than the readings was accepted")


_series = st.lists(
    st.tuples(st.integers(min_value=0, max_value=24 * 60), st.decimals(min_value=0, max_value=1000, places=3)),
    min_size=1, max_size=30, unique_by=lambda pair: pair[0])


@settings(max_examples=200, deadline=None)
@given(series=_series, data=st.data())
def test_totals_do_not_depend_on_arrival_order_repeats_or_replays(series: list[tuple[int, Decimal]],
                                                                   data: st.DataObject) -> None:
    # Given a device's registers, and a delivery that reorders, repeats and replays them
    readings = [(at(minute), value) for minute, value in series]
    delivery = data.draw(st.permutations(readings + data.draw(st.lists(st.sampled_from(readings), max_size=10))))
    # When they are merged one by one, the hours recomputed after each
    known: dict[dt.datetime, Decimal] = {}
    for reading in delivery:
        known, _ = merge(known, [reading])
        for energy in hourly(known, d(1000)).values():
            assert energy.total_kwh >= 0  # no interval ever counts negative
    # Then the hours equal those of the readings in time order, and their sum is the sum of the
    # differences between consecutive readings
    result = hourly(known, d(1000))
    assert result == hourly(dict(readings), d(1000))
    ordered = [value for _, value in sorted(readings)]
    expected = sum((interval_energy(a, b, d(1000))[0] for a, b in itertools.pairwise(ordered)), d(0))
    assert sum((e.total_kwh for e in result.values()), d(0)) == expected
    assert sum(e.reading_count for e in result.values()) == len(readings)
