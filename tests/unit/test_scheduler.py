"""The local runtime's schedule expressions, as EventBridge reads them (UTC, six cron fields)."""

from __future__ import annotations

import datetime as dt

import pytest

from infra.local.scheduler import CronExpression, ScheduleError, parse

UTC = dt.UTC


@pytest.mark.parametrize(("expression", "seconds"), [
    ("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400),
])
def test_a_rate_is_its_period_in_seconds(expression: str, seconds: int) -> None:
    assert parse(expression) == seconds


@pytest.mark.parametrize("expression", [
    "rate(0.5 minutes)", "rate(1 week)", "every 5 minutes", "cron(0 12 * * ?)",  # five fields
    "cron(0 12 L * ? *)", "cron(0 12 ? * 6#3 *)", "cron(0 12 15W * ? *)", "cron(60 * * * ? *)",
    "cron(0 24 * * ? *)", "cron(0 0 0 * ? *)", "cron(*/0 * * * ? *)", "cron(0 0 1 13 ? *)",
])
def test_what_eventbridge_refuses_or_this_runtime_cannot_run_is_refused_at_start(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse(expression)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_steps_ranges_and_lists_of_minutes_and_hours() -> None:
    rule = parse("cron(*/15 8-10,20 * * ? *)")
    assert isinstance(rule, CronExpression)
    assert rule.next_after(at("2026-12-05T08:01:00")) == at("2026-12-05T08:15:00")
    assert rule.next_after(at("2026-12-05T10:45:00")) == at("2026-12-05T20:00:00")
    assert rule.next_after(at("2026-12-05T20:45:30")) == at("2026-12-06T08:00:00")


def test_week_days_count_from_sunday_and_take_names() -> None:
    by_number, by_name = parse("cron(30 6 ? * 2 *)"), parse("cron(30 6 ? * MON *)")
    assert isinstance(by_number, CronExpression) and isinstance(by_name, CronExpression)
    saturday = at("2026-12-05T00:00:00")  # a Saturday
    assert by_number.next_after(saturday) == by_name.next_after(saturday) == at("2026-12-07T06:30:00")  # Monday


def test_days_months_and_years() -> None:
    rule = parse("cron(0 0 1 JAN,JUL ? 2027-2028)")
    assert isinstance(rule, CronExpression)
    assert rule.next_after(at("2026-12-05T00:00:00")) == at("2027-01-01T00:00:00")
    assert rule.next_after(at("2027-01-01T00:00:00")) == at("2027-07-01T00:00:00")
    assert not rule.matches(at("2029-01-01T00:00:00"))


def test_an_expression_that_never_fires_says_so() -> None:
    rule = parse("cron(0 0 31 FEB ? *)")
    assert isinstance(rule, CronExpression)
    with pytest.raises(ScheduleError, match="never fires"):
        rule.next_after(at("2026-12-05T00:00:00"))
