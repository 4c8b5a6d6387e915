"""The silent check through in-memory fakes: ingestion writes the deadlines, the check reads only
what is due, raises each silence once, and puts stale deadlines right. No endpoint, no process."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.messages import SilentCheck
from chalicelib.monitoring.domain import DEADLINE_SHARDS, Meter, deadline_key, deadline_shard
from chalicelib.monitoring.ingest import Ingestor
from chalicelib.monitoring.silent import PAGE, SilenceWatch
from chalicelib.platform.consumer import Delivery, Outcome
from tests.unit.fakes import InMemoryHourTotals, RecordingMeterStatus, RecordingRaisedAlerts

START = dt.datetime(2026, 11, 23, 20, 0, tzinfo=dt.UTC)


class Fleet:
    """Meters, the hours ingestion writes, and a clock the test moves."""

    def __init__(self) -> None:
        self.now = START
        self.hours = InMemoryHourTotals()
        self.alerts = RecordingRaisedAlerts()
        self.meters: dict[str, Meter] = {}
        self.sent: list[SilentCheck] = []
        self.looked_up: list[set[str]] = []

        def lookup(ids: Any) -> dict[str, Meter | None]:
            self.looked_up.append(set(ids))
            return {i: self.as_kept(i) for i in ids}

        self.status = RecordingMeterStatus()
        self.ingestor = Ingestor(self.hours, self.alerts, lookup=lookup, clock=lambda: self.now,
                                 notify=lambda _: None, status=self.status)
        self.watch = SilenceWatch(self.hours, self.alerts, lookup=lookup, clock=lambda: self.now,
                                  send=self.sent.extend, status=self.status)

    def add_meter(self, device_id: str) -> None:
        self.meters[device_id] = Meter(device_id, device_id.title(), 1.0, "UTC", None, None, frozenset(),
                                       never_reported=True)

    def as_kept(self, device_id: str) -> Meter | None:
        """The meter with the flags the fleet status was given since (as the replica keeps them)."""
        meter = self.meters.get(device_id)
        for change, changed, _ in self.status.changes:
            if meter is not None and changed == device_id and change in ("reported", "silenced"):
                meter = replace(meter, never_reported=False, silenced=change == "silenced")
        return meter

    def report(self, *device_ids: str) -> Outcome:
        """Each meter sends a reading now, all in one batch."""
        return self.deliver(*((d, self.now) for d in device_ids))

    def deliver(self, *readings: tuple[str, dt.datetime]) -> Outcome:
        """One batch of these (device, moment) readings."""
        body = json.dumps({"readings": [{"device_id": d, "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                         "measurement_value": 0.01} for d, moment in readings]})
        outcome = self.ingestor.handle_batch([Delivery("m", body, 1, False, self.ingestor.source.parse(body))])
        assert outcome.failed == set() and outcome.dead == []
        return outcome

    def run_check(self) -> int:
        """The schedule, then every shard message (and each continuation) as the queue would deliver them."""
        self.sent.clear()
        self.watch.start()
        raised = 0
        while self.sent:
            raised += self.watch.check(self.sent.pop(0))
        return raised

    def indexed(self) -> dict[tuple[str, str], str]:
        return {key: h.silent_at for key, h in self.hours.hours.items() if h.silent_at is not None}


@pytest.fixture
def fleet() -> Fleet:
    return Fleet()


def test_a_reading_sets_its_meters_deadline_three_intervals_on(fleet: Fleet) -> None:
    fleet.add_meter("kitchen")
    fleet.now = START + dt.timedelta(minutes=10)
    fleet.report("kitchen")

    assert fleet.indexed() == {("kitchen", "2026-11-23T20:00:00Z"): "2026-11-23T20:40:00.000000Z"}


def test_a_meter_that_goes_quiet_raises_one_alert_and_the_others_are_not_read(fleet: Fleet) -> None:
    for name in ("a", "b", "c", "quiet"):
        fleet.add_meter(name)
    fleet.report("a", "b", "c", "quiet")
    for minutes in (10, 20, 30):
        fleet.now = START + dt.timedelta(minutes=minutes)
        fleet.report("a", "b", "c")

    fleet.now = START + dt.timedelta(minutes=31)
    fleet.looked_up.clear()
    assert fleet.run_check() == 1
    assert [a.id for a in fleet.alerts.sent] == ["quiet:silent:2026-11-23T20:00:00Z"]
    assert fleet.looked_up == [{"quiet"}]  # only what was due was read
    assert fleet.status.changes[-1] == ("silenced", "quiet", None)  # the fleet shows it silent
    assert sorted(d for change, d, _ in fleet.status.changes if change == "reported") == ["a", "b", "c", "quiet"]

    fleet.now = START + dt.timedelta(minutes=36)
    assert fleet.run_check() == 0  # a silence is raised once
    assert ("quiet", "2026-11-23T20:00:00Z") not in fleet.indexed()


def test_a_meter_that_reports_again_gets_a_deadline_and_its_next_silence_an_alert(fleet: Fleet) -> None:
    fleet.add_meter("m")
    fleet.report("m")
    fleet.now = START + dt.timedelta(minutes=45)
    assert fleet.run_check() == 1

    fleet.report("m")  # back, in the same hour
    fleet.now = START + dt.timedelta(minutes=80)
    assert fleet.run_check() == 1
    assert [a.id for a in fleet.alerts.sent] == ["m:silent:2026-11-23T20:00:00Z", "m:silent:2026-11-23T20:45:00Z"]


def test_a_new_hour_takes_the_deadline_over_from_the_hour_before(fleet: Fleet) -> None:
    fleet.add_meter("m")
    fleet.now = START + dt.timedelta(minutes=50)
    fleet.report("m")
    fleet.now = START + dt.timedelta(minutes=60)
    fleet.report("m")

    assert fleet.indexed() == {("m", "2026-11-23T21:00:00Z"): "2026-11-23T21:30:00.000000Z"}


def test_only_the_write_that_makes_a_new_hour_hands_the_deadline_over(fleet: Fleet) -> None:
    fleet.add_meter("m")
    fleet.now = START + dt.timedelta(minutes=40)
    assert fleet.report("m").log["write_requests"] == 1  # the device's first hour: nothing to take over
    fleet.now = START + dt.timedelta(minutes=50)
    assert fleet.report("m").log["write_requests"] == 1  # the same hour: its own write moves the deadline

    # A late reading of 20:00 and the first of 21:00 in one batch: 21:00 takes the deadline over
    fleet.now = START + dt.timedelta(minutes=65)
    late = fleet.deliver(("m", START + dt.timedelta(minutes=55)), ("m", START + dt.timedelta(minutes=65)))
    assert late.log["write_requests"] == 3 and late.log["counted"] == 2
    assert fleet.indexed() == {("m", "2026-11-23T21:00:00Z"): "2026-11-23T21:35:00.000000Z"}

    fleet.now = START + dt.timedelta(minutes=75)
    assert fleet.report("m").log["write_requests"] == 1
    assert fleet.indexed() == {("m", "2026-11-23T21:00:00Z"): "2026-11-23T21:45:00.000000Z"}


def test_the_new_hours_of_a_batch_hand_over_in_one_request_and_a_failed_one_costs_no_reading(
        fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"m{i}" for i in range(30)]
    for name in names:
        fleet.add_meter(name)
    fleet.now = START + dt.timedelta(minutes=50)
    fleet.report(*names)
    fleet.now = START + dt.timedelta(minutes=60)
    outcome = fleet.report(*names)
    assert outcome.log["write_requests"] == 30 + 1  # a write a meter, and one for the thirty hand-overs
    assert set(fleet.indexed()) == {(name, "2026-11-23T21:00:00Z") for name in names}

    def failing(hours: list[tuple[str, str]], stats: Any) -> None:
        raise RuntimeError("throttled")

    monkeypatch.setattr(fleet.hours, "drop_deadlines", failing)
    fleet.now = START + dt.timedelta(minutes=120)
    outcome = fleet.report(*names)  # counted all the same; the deadlines left behind come due later
    assert outcome.log["counted"] == 30
    assert len(fleet.indexed()) == 60
    fleet.now = START + dt.timedelta(minutes=125)
    assert fleet.run_check() == 0  # the check drops the old hours' deadlines and raises nothing
    assert set(fleet.indexed()) == {(name, "2026-11-23T22:00:00Z") for name in names}


def test_a_stale_deadline_is_dropped_or_moved_and_raises_nothing(fleet: Fleet) -> None:
    fleet.add_meter("m")
    fleet.report("m")
    # A gap: 20:00's deadline is not handed over by 22:00's first reading.
    fleet.now = START + dt.timedelta(hours=2)
    fleet.report("m")
    fleet.hours.set_deadline("m", "2026-11-23T22:00:00Z", "2026-11-23T22:05:00.000000Z")  # written too early

    fleet.now = START + dt.timedelta(hours=2, minutes=10)
    assert fleet.run_check() == 0
    assert fleet.alerts.sent == []
    assert fleet.indexed() == {("m", "2026-11-23T22:00:00Z"): "2026-11-23T22:30:00.000000Z"}


def test_a_deleted_meters_deadline_is_dropped(fleet: Fleet) -> None:
    fleet.add_meter("gone")
    fleet.report("gone")
    del fleet.meters["gone"]

    fleet.now = START + dt.timedelta(hours=1)
    assert fleet.run_check() == 0
    assert fleet.indexed() == {}


def test_the_check_starts_one_message_a_shard_and_a_full_shard_goes_on_in_another(fleet: Fleet) -> None:
    fleet.watch.start(START)
    assert sorted(m.shard for m in fleet.sent) == list(range(DEADLINE_SHARDS))
    assert {m.until for m in fleet.sent} == {deadline_key(START)}

    names = [f"m{i}" for i in range(2000)]
    crowded = [n for n in names if deadline_shard(n) == 0][:PAGE + 5]
    for name in crowded:
        fleet.add_meter(name)
    fleet.report(*crowded)
    fleet.now = START + dt.timedelta(hours=1)
    fleet.sent.clear()
    first = fleet.watch.check(SilentCheck(shard=0, until=deadline_key(fleet.now)))

    assert first == PAGE
    assert [(m.shard, m.cursor is not None) for m in fleet.sent] == [(0, True)]
    assert fleet.watch.check(fleet.sent.pop()) == 5
    assert len(fleet.alerts.sent) == len(crowded)
