"""The readings consumer's use case through in-memory fakes: exact totals, one write a group,
duplicates, alerts, unknown devices, bad readings and failed writes. No endpoint, no process."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.messages import ReadingsUpdated
from chalicelib.monitoring.domain import Meter
from chalicelib.monitoring.ingest import Ingestor
from chalicelib.platform.consumer import Delivery
from tests.unit.fakes import IngestorFixture

NOW = dt.datetime(2026, 11, 23, 21, 30, tzinfo=dt.UTC)
KITCHEN = Meter("kitchen", "Kitchen", 1.0, "Europe/Bucharest", None, None, frozenset({"alice", "bob"}))
GARAGE = Meter("garage", "Garage", 5.0, "UTC", None, None, frozenset({"carol"}))


class Fixture(IngestorFixture):
    def __init__(self) -> None:
        super().__init__((KITCHEN, GARAGE), NOW)

    def total(self, device_id: str, hour: str) -> Decimal | None:
        stored = self.hours.get(device_id, hour)
        return None if stored is None else stored.total_kwh


def reading(device_id: str, minute: int, kwh: float, hour: int = 20) -> dict[str, Any]:
    return {"device_id": device_id, "timestamp": f"2026-11-23T{hour:02d}:{minute:02d}:00Z", "measurement_value": kwh}


@pytest.fixture
def fx() -> Fixture:
    return Fixture()


def test_readings_of_one_device_and_hour_are_counted_exactly_in_one_write(fx: Fixture) -> None:
    outcome, _ = fx.deliver({"readings": [reading("kitchen", m, 0.1) for m in (0, 10, 20)]},
                            reading("kitchen", 30, 0.2), reading("kitchen", 0, 0.05, hour=21))

    assert fx.total("kitchen", "2026-11-23T20:00:00Z") == Decimal("0.5")
    assert fx.total("kitchen", "2026-11-23T21:00:00Z") == Decimal("0.05")
    assert outcome.failed == set() and outcome.dead == []
    assert outcome.log["counted"] == 5 and outcome.log["write_requests"] == 2  # one per (device, hour)
    assert [(u.hour_start, u.kwh, u.owner_ids) for u in fx.updates[0].readings] == [
        ("2026-11-23T20:00:00Z", 0.5, ["alice", "bob"]), ("2026-11-23T21:00:00Z", 0.05, ["alice", "bob"])]


def test_a_redelivered_or_repeated_reading_counts_once(fx: Fixture) -> None:
    batch = {"readings": [reading("kitchen", 0, 0.1), reading("kitchen", 10, 0.1)]}
    fx.deliver(batch)
    outcome, _ = fx.deliver(batch, reading("kitchen", 10, 0.1), reading("kitchen", 20, 0.3))

    assert fx.total("kitchen", "2026-11-23T20:00:00Z") == Decimal("0.5")
    # The copy inside the batch is merged before the write; the two met in the table are duplicates.
    assert outcome.log["counted"] == 1 and outcome.log["duplicates"] == 2
    assert fx.hours.get("kitchen", "2026-11-23T20:00:00Z").reading_count == 3  # type: ignore[union-attr]


def test_a_group_that_meets_a_reading_counted_meanwhile_adds_only_the_others(fx: Fixture) -> None:
    # The batch's pre-read of its hours sees nothing (another consumer counted 20:00 right after it):
    # the conditional add is refused, and the group is written again without the counted reading.
    fx.deliver(reading("kitchen", 0, 0.1))
    fx.hours.get_many = lambda keys: {}  # type: ignore[method-assign]

    outcome, _ = fx.deliver(reading("kitchen", 0, 0.1), reading("kitchen", 10, 0.2), reading("kitchen", 20, 0.4))

    assert fx.total("kitchen", "2026-11-23T20:00:00Z") == Decimal("0.7")
    assert outcome.log["counted"] == 2 and outcome.log["duplicates"] == 1
    assert outcome.log["write_requests"] == 2  # the refused add and the one that counted


def test_crossing_the_limit_raises_one_alert_for_the_hour(fx: Fixture) -> None:
    fx.deliver(reading("kitchen", 0, 0.6))
    assert fx.alerts.sent == []

    outcome, _ = fx.deliver(reading("kitchen", 10, 0.5))
    fx.deliver(reading("kitchen", 20, 0.5))  # further over: the same hour, no second alert

    assert outcome.log["alerts"] == 1
    assert fx.status.changes == [("went_over", "kitchen", "2026-11-23T20:00:00Z")]
    assert [(a.id, a.kind, a.total_kwh, a.max_hourly_kwh, a.device_name) for a in fx.alerts.sent] == [
        ("kitchen:2026-11-23T20:00:00Z", "over_consumption", 1.1, 1.0, "Kitchen")]
    assert fx.alerts.sent[0].created_at == "2026-11-23T21:30:00+00:00"


def test_a_repeated_reading_of_an_hour_over_the_limit_makes_sure_its_alert_went_out(fx: Fixture) -> None:
    fx.deliver(reading("kitchen", 0, 1.5))
    fx.alerts.stored.clear()
    fx.alerts.sent.clear()  # as if the alert's announcement had been lost

    fx.deliver(reading("kitchen", 0, 1.5))

    assert [a.id for a in fx.alerts.sent] == ["kitchen:2026-11-23T20:00:00Z"]
    assert fx.total("kitchen", "2026-11-23T20:00:00Z") == Decimal("1.5")


def test_an_unknown_device_is_retried_then_dead_lettered_on_the_last_attempt(fx: Fixture) -> None:
    outcome, ids = fx.deliver(reading("nobody", 0, 0.1), reading("kitchen", 0, 0.1))
    assert outcome.failed == {ids[0]} and outcome.dead == []  # the replica may not know it yet

    outcome, ids = fx.deliver(reading("nobody", 0, 0.1), last_attempt=True)
    assert outcome.failed == set()
    assert [(d.source_message_id, d.reason) for d in outcome.dead] == [(ids[0], "unknown device 'nobody'")]
    assert fx.total("kitchen", "2026-11-23T20:00:00Z") == Decimal("0.1")


def test_a_bad_reading_of_a_batch_is_dead_lettered_alone_and_the_others_count(fx: Fixture) -> None:
    bad = {"device_id": "kitchen", "timestamp": "2026-11-23T20:10:00Z", "measurement_value": -1}
    future = reading("kitchen", 40, 0.1, hour=21)  # 21:40 is ten minutes after now: past the clock skew
    outcome, ids = fx.deliver({"readings": [reading("kitchen", 0, 0.1), bad, future, reading("garage", 0, 2)]})

    assert outcome.failed == set()
    assert [(d.source_message_id, d.extra, json.loads(d.body)) for d in outcome.dead] == [
        (ids[0], {"reading_index": "1"}, bad), (ids[0], {"reading_index": "2"}, future)]
    assert "negative" in outcome.dead[0].reason and "future" in outcome.dead[1].reason
    assert fx.total("kitchen", "2026-11-23T20:00:00Z") == Decimal("0.1")
    assert fx.total("garage", "2026-11-23T20:00:00Z") == Decimal(2)


def test_a_failed_write_retries_only_the_records_of_its_group(fx: Fixture) -> None:
    fx.hours.fail_next_add = ConnectionError("the table went away")
    outcome, ids = fx.deliver(reading("kitchen", 0, 0.1))
    assert outcome.failed == {ids[0]}
    assert fx.total("kitchen", "2026-11-23T20:00:00Z") is None

    outcome, ids = fx.deliver(reading("kitchen", 0, 0.1), reading("garage", 0, 0.2))
    assert outcome.failed == set()
    assert fx.total("kitchen", "2026-11-23T20:00:00Z") == Decimal("0.1")


def test_live_updates_that_cannot_be_sent_do_not_fail_the_counted_readings(fx: Fixture) -> None:
    def refuse(_: ReadingsUpdated) -> None:
        raise ConnectionError("the queue went away")

    ingestor = Ingestor(fx.hours, fx.alerts, lookup=lambda ids: {i: fx.meters.get(i) for i in ids},
                        clock=lambda: NOW, notify=refuse, status=fx.status)
    source = ingestor.source
    body = json.dumps(reading("garage", 0, 0.2))
    outcome = ingestor.handle_batch([Delivery("m1", body, 1, False, source.parse(body))])

    assert outcome.failed == set()
    assert fx.total("garage", "2026-11-23T20:00:00Z") == Decimal("0.2")


def test_a_first_reading_or_one_after_a_silence_tells_the_fleet_once(fx: Fixture) -> None:
    fx.meters["kitchen"] = replace(KITCHEN, never_reported=True)
    fx.meters["garage"] = replace(GARAGE, silenced=True)

    fx.deliver({"readings": [reading("kitchen", 0, 0.1), reading("kitchen", 0, 0.1, hour=21),
                             reading("garage", 0, 0.1)]}, reading("garage", 10, 0.1))
    fx.meters = {"kitchen": KITCHEN, "garage": GARAGE}  # as the replica now holds them
    fx.deliver(reading("kitchen", 10, 0.1, hour=21), reading("garage", 20, 0.1))

    assert sorted(fx.status.changes) == [("reported", "garage", None), ("reported", "kitchen", None)]

