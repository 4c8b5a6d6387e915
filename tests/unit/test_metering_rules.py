"""The pure rules of metering: parsing readings, hours, grouping, the alert rule, day boundaries,
the silent-meter rule and the FAQ matching. No AWS here."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from chalicelib.chat import faq
from chalicelib.monitoring import calendar
from chalicelib.monitoring.domain import HourTotal, Meter, is_silent
from chalicelib.monitoring.ingest import will_cross
from chalicelib.monitoring.readings import (
    InvalidReadingError,
    Limits,
    crossed,
    group_by_hour,
    hour_key,
    parse_message,
    parse_reading,
    timestamp_key,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
LIMITS = Limits.at(NOW, 100, 300)  # readings up to five minutes past NOW


def reading(ts: str, value: float | str = 0.5, device: str = "m1") -> str:
    return f'{{"timestamp": "{ts}", "device_id": "{device}", "measurement_value": {value}}}'


# --- parsing -------------------------------------------------------------------------------


def test_a_naive_iso_timestamp_is_utc_and_an_offset_one_is_converted() -> None:
    assert parse_reading(reading("2026-11-23T20:10:00"), LIMITS).timestamp == dt.datetime(2026, 11, 23, 20, 10, tzinfo=UTC)
    shifted = parse_reading(reading("2026-11-23T22:10:00+02:00"), LIMITS)
    assert shifted.timestamp == dt.datetime(2026, 11, 23, 20, 10, tzinfo=UTC)


def test_a_reading_up_to_the_allowed_clock_skew_past_now_is_accepted() -> None:
    assert parse_reading(reading("2026-11-23T21:05:00Z"), LIMITS).timestamp == NOW + dt.timedelta(minutes=5)


def test_epoch_seconds_are_accepted() -> None:
    body = '{"timestamp": 1795464600, "device_id": "m1", "measurement_value": 0.1}'
    assert parse_reading(body, LIMITS).timestamp == dt.datetime.fromtimestamp(1795464600, UTC)


def test_values_keep_their_exact_decimal_digits() -> None:
    assert parse_reading(reading("2026-11-23T20:10:00Z", "0.1"), LIMITS).kwh == Decimal("0.1")
    total = sum((parse_reading(reading(f"2026-11-23T20:{m:02d}:00Z", "0.1"), LIMITS).kwh for m in range(0, 60, 10)),
                Decimal(0))
    assert total == Decimal("0.6")  # not 0.6000000000000001


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"device_id": "m1", "measurement_value": 1}', "missing field"),
        (reading("2026-11-23T20:10:00Z", -0.1), "negative"),
        (reading("2026-11-23T20:10:00Z", 101), "above the maximum"),
        ('{"timestamp": "2026-11-23T20:10:00Z", "device_id": "m1", "measurement_value": NaN}', "finite"),
        ('{"timestamp": "2026-11-23T20:10:00Z", "device_id": "m1", "measurement_value": "1"}', "number"),
        ('{"timestamp": "2026-11-23T20:10:00Z", "device_id": "m1", "measurement_value": true}', "number"),
        (reading("yesterday"), "ISO-8601"),
        (reading("1899-01-01T00:00:00Z"), "before 2000"),
        (reading("0001-01-01T00:00:00+01:00"), "out of range"),
        (reading("9999-12-31T23:59:59-01:00"), "out of range"),
        ('{"timestamp": 1' + "0" * 400 + ', "device_id": "m1", "measurement_value": 1}', "out of range"),
        ('{"timestamp": 1e400, "device_id": "m1", "measurement_value": 1}', "finite|out of range"),
        (reading("2026-11-23T20:10:00Z", "1" + "0" * 400), "above the maximum"),
        (reading("2026-11-23T21:05:01Z"), "future"),
        (reading("2099-12-31T00:00:00Z"), "future"),
        ('{"timestamp": "2026-11-23T20:10:00Z", "device_id": "bad id!", "measurement_value": 1}', "device_id"),
        ('{"timestamp": true, "device_id": "m1", "measurement_value": 1}', "timestamp"),
    ],
)
def test_an_invalid_reading_is_refused_with_its_reason(body: str, reason: str) -> None:
    with pytest.raises(InvalidReadingError, match=reason):
        parse_reading(body, LIMITS)


# --- hours and groups ----------------------------------------------------------------------


def test_a_batch_message_judges_each_reading_alone() -> None:
    body = ('{"readings": [{"timestamp": "2026-01-01T00:10:00Z", "device_id": "a", "measurement_value": 0.1},'
            ' {"timestamp": "2026-01-01T00:20:00Z", "device_id": "a", "measurement_value": -1}, 7]}')
    entries = parse_message(body, LIMITS)
    assert [e.index for e in entries] == [0, 1, 2]
    assert entries[0].reading is not None and entries[0].reading.kwh == Decimal("0.1") and entries[0].error is None
    assert entries[1].reading is None and "negative" in (entries[1].error or "")
    assert entries[2].reading is None and "object" in (entries[2].error or "") and entries[2].raw == 7


def test_a_single_reading_message_is_one_entry_without_an_index() -> None:
    entries = parse_message('{"timestamp": 1767225600, "device_id": "a", "measurement_value": 1}', LIMITS)
    assert len(entries) == 1 and entries[0].index is None and entries[0].reading is not None


@pytest.mark.parametrize(("body", "reason"), [
    ('{"readings": "no"}', "must be a list"),
    ("[" * 20000, "not JSON"),
    ('{"readings": []' + " " * (1024 * 1024) + "}", "larger than the queue allows"),
    ('{"timestamp": "x", "device_id": "a", "measurement_value": 1, "pad": "' + "x" * 5000 + '"}', "larger than a"),
    ('{"timestamp": "never", "device_id": "a", "measurement_value": 1}', "ISO-8601"),
])
def test_a_message_that_is_unusable_as_a_whole_is_refused_with_its_reason(body: str, reason: str) -> None:
    with pytest.raises(InvalidReadingError, match=reason):
        parse_message(body, LIMITS)


def test_a_reading_counts_in_the_clock_hour_that_contains_it() -> None:
    assert hour_key(dt.datetime(2026, 11, 23, 20, 59, 59, tzinfo=UTC)) == "2026-11-23T20:00:00Z"
    assert hour_key(dt.datetime(2026, 11, 23, 21, 0, 0, tzinfo=UTC)) == "2026-11-23T21:00:00Z"


def test_timestamp_keys_are_exact_and_canonical() -> None:
    assert timestamp_key(dt.datetime(2026, 1, 1, 0, 10, tzinfo=UTC)) == "2026-01-01T00:10:00Z"
    assert timestamp_key(dt.datetime(2026, 1, 1, 0, 10, 0, 500000, tzinfo=UTC)) == "2026-01-01T00:10:00.5Z"


def test_grouping_puts_each_device_hour_together_and_keeps_the_first_of_a_repeated_timestamp() -> None:
    parsed = [
        ("a", parse_reading(reading("2026-11-23T20:10:00Z", 1), LIMITS)),
        ("b", parse_reading(reading("2026-11-23T20:20:00Z", 2), LIMITS)),
        ("c", parse_reading(reading("2026-11-23T20:10:00Z", 9), LIMITS)),  # same timestamp: a duplicate
        ("d", parse_reading(reading("2026-11-23T21:00:00Z", 3), LIMITS)),
        ("e", parse_reading(reading("2026-11-23T20:30:00Z", 4, device="m2"), LIMITS)),
    ]
    groups = group_by_hour(parsed)
    assert list(groups) == [("m1", "2026-11-23T20:00:00Z"), ("m1", "2026-11-23T21:00:00Z"),
                            ("m2", "2026-11-23T20:00:00Z")]
    assert [mid for mid, _ in groups[("m1", "2026-11-23T20:00:00Z")]] == ["a", "b"]


# --- the alert rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "limit", "expected"),
    [
        ("0.9", "1.1", 1.0, True),     # crosses
        ("1.0", "1.1", 1.0, True),     # at the limit is not over; over it now
        ("0.5", "1.0", 1.0, False),    # reaching the limit is not exceeding it
        ("1.1", "1.3", 1.0, False),    # was over already: not the first time
        ("0.2", "0.4", 1.0, False),
    ],
)
def test_an_alert_is_raised_only_when_the_hour_first_exceeds_the_limit(
    before: str, after: str, limit: float, expected: bool
) -> None:
    assert crossed(Decimal(before), Decimal(after), limit) is expected


# --- days in the device's time zone -------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "zone", "hours"),
    [
        (dt.date(2026, 3, 29), "Europe/Bucharest", 23),  # clocks go forward
        (dt.date(2026, 10, 25), "Europe/Bucharest", 25),  # clocks go back
        (dt.date(2026, 11, 23), "Europe/Bucharest", 24),
        (dt.date(2026, 3, 8), "America/New_York", 23),
        (dt.date(2026, 3, 29), "UTC", 24),
    ],
)
def test_a_local_day_has_23_24_or_25_hours(day: dt.date, zone: str, hours: int) -> None:
    assert len(calendar.day_hours(day, zone)) == hours


def test_a_group_is_expected_to_cross_when_its_new_readings_take_the_hour_over_the_limit() -> None:
    meter = Meter("m1", "M", 1.0, "UTC", None, None, frozenset())
    group = [("msg", parse_reading(reading(f"2026-11-23T20:{m}:00", 0.3), LIMITS)) for m in ("10", "20")]
    assert not will_cross(meter, group, None)  # 0.6
    assert will_cross(meter, group, HourTotal("m1", "2026-11-23T20:00:00Z", Decimal("0.5"), 1, {}))  # 1.1
    seen = {r.key: r.kwh for _, r in group}
    assert not will_cross(meter, group, HourTotal("m1", "2026-11-23T20:00:00Z", Decimal("0.9"), 2, seen))  # repeats
    assert not will_cross(meter, group, HourTotal("m1", "2026-11-23T20:00:00Z", Decimal("1.5"), 1, {}))  # over already
    assert not will_cross(None, group, None)


def test_a_local_day_starts_at_local_midnight_in_utc() -> None:
    start, end = calendar.day_bounds(dt.date(2026, 11, 23), "Europe/Bucharest")
    assert start == dt.datetime(2026, 11, 22, 22, tzinfo=UTC)
    assert end == dt.datetime(2026, 11, 23, 22, tzinfo=UTC)
    assert calendar.local_iso(start, "Europe/Bucharest") == "2026-11-23T00:00:00+02:00"


def test_the_repeated_hour_of_a_fall_back_day_appears_twice_with_different_offsets() -> None:
    labels = [calendar.local_iso(h, "Europe/Bucharest") for h in calendar.day_hours(dt.date(2026, 10, 25), "Europe/Bucharest")]
    assert "2026-10-25T03:00:00+03:00" in labels and "2026-10-25T03:00:00+02:00" in labels


# --- silent meters and the FAQ --------------------------------------------------------------


def test_a_meter_is_silent_after_three_missed_intervals() -> None:
    last = dt.datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
    assert not is_silent(last, last + dt.timedelta(minutes=29), 600, 3)
    assert is_silent(last, last + dt.timedelta(minutes=30), 600, 3)


def test_there_are_at_least_ten_faq_rules_and_each_answers_a_typical_question() -> None:
    questions = {
        "read-chart": "How do I read the chart?",
        "alert-meaning": "What does this alert mean?",
        "limits": "How are limits set?",
        "tariff": "What tariff do I pay?",
        "contact": "How can I contact you?",
        "export": "Can I download a CSV?",
        "timezone": "Why does my day have 25 hours?",
        "missing-hours": "Why is there no data for an hour in my chart?",
        "reduce": "How can I reduce my consumption?",
        "acknowledge": "How do I acknowledge an alert?",
    }
    assert len(faq.rules()) >= 10
    for rule_id, question in questions.items():
        matched = faq.match(question)
        assert matched is not None and matched.id == rule_id, (question, matched)
    assert faq.match("What is the capital of Peru?") is None


@pytest.mark.parametrize("text", ["I want a human", "can an admin help?", "operator please", "HUMAN"])
def test_escalation_words_ask_for_a_person(text: str) -> None:
    assert faq.asks_for_human(text)
    assert not faq.asks_for_human("how do I read the chart")
