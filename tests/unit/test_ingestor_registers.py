"""The readings consumer on register devices, through in-memory fakes: hours count the differences
between consecutive registers, whatever the order, the repeats and the replays of their delivery."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.monitoring.domain import Meter
from chalicelib.monitoring.ingest import Ingestor
from chalicelib.monitoring.registers import hourly
from tests.unit.fakes import IngestorFixture, RecordingMeterStatus

NOW = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)
BOILER = Meter("boiler", "Boiler", 5.0, "UTC", None, None, frozenset({"alice"}), reading_kind="register",
               register_max_kwh=99999.0)
KITCHEN = Meter("kitchen", "Kitchen", 1.0, "UTC", None, None, frozenset({"alice"}))
H20, H21, H22 = "2026-11-23T20:00:00Z", "2026-11-23T21:00:00Z", "2026-11-23T22:00:00Z"


class Fixture(IngestorFixture):
    def __init__(self) -> None:
        super().__init__((BOILER, KITCHEN), NOW)

    def totals(self, device_id: str = "boiler") -> dict[str, Decimal]:
        return {hour: h.total_kwh for (d, hour), h in sorted(self.hours.hours.items()) if d == device_id}

    def resets(self) -> dict[str, bool]:
        return {hour: h.reset for (d, hour), h in sorted(self.hours.hours.items()) if d == "boiler"}


def register(hour: int, minute: int, value: float | str, device: str = "boiler") -> dict[str, Any]:
    return {"device_id": device, "timestamp": f"2026-11-23T{hour:02d}:{minute:02d}:00Z",
            "measurement_value": Decimal(str(value))}


def body(*readings: dict[str, Any]) -> str:
    return json.dumps({"readings": [{**r, "measurement_value": float(r["measurement_value"])} for r in readings]})


@pytest.fixture
def fx() -> Fixture:
    return Fixture()


def test_registers_count_their_differences_and_the_first_is_a_baseline(fx: Fixture) -> None:
    # Given registers far above an interval reading's maximum
    outcome, _ = fx.deliver(body(register(20, 10, 41000.5), register(20, 40, 41001), register(21, 10, 41003.5)))
    # Then the first counts nothing and each other its difference, in the hour that contains it
    assert fx.totals() == {H20: Decimal("0.5"), H21: Decimal("2.5")}
    assert outcome.failed == set() and outcome.dead == [] and outcome.log["counted"] == 3


def test_a_late_reading_between_two_counted_ones_moves_energy_between_their_hours(fx: Fixture) -> None:
    fx.deliver(body(register(20, 50, 100), register(21, 10, 110)))
    assert fx.totals() == {H20: Decimal(0), H21: Decimal(10)}
    # When a reading of 20:55 arrives late
    fx.deliver(body(register(20, 55, 104)))
    # Then 4 kWh move to 20:00 and the sum is unchanged
    assert fx.totals() == {H20: Decimal(4), H21: Decimal(6)}


def test_a_late_reading_in_an_hour_of_its_own_takes_the_energy_since_the_previous_hour(fx: Fixture) -> None:
    fx.deliver(body(register(20, 50, 100)), body(register(22, 10, 130)))
    fx.deliver(body(register(21, 30, 120)))
    assert fx.totals() == {H20: Decimal(0), H21: Decimal(20), H22: Decimal(10)}


def test_a_reset_counts_the_new_value_and_marks_its_hour(fx: Fixture) -> None:
    fx.deliver(body(register(20, 10, 5000), register(20, 50, 5002), register(21, 10, 1.5), register(21, 20, 2)))
    assert fx.totals() == {H20: Decimal(2), H21: Decimal(2)}
    assert fx.resets() == {H20: False, H21: True}


def test_a_drop_near_the_maximum_is_a_rollover(fx: Fixture) -> None:
    fx.deliver(body(register(20, 10, 99990), register(21, 10, 3)))
    assert fx.totals() == {H20: Decimal(0), H21: Decimal(12)}
    assert fx.resets() == {H20: False, H21: False}


def test_duplicates_and_replays_count_nothing(fx: Fixture) -> None:
    batch = body(register(20, 10, 100), register(20, 20, 101))
    fx.deliver(batch)
    outcome, _ = fx.deliver(batch, body(register(20, 20, 500)))
    assert fx.totals() == {H20: Decimal(1)}
    # The copy inside the batch is merged before the write; the two met in the table are duplicates.
    assert outcome.log["counted"] == 0 and outcome.log["duplicates"] == 2


def test_crossing_the_hourly_limit_raises_one_alert(fx: Fixture) -> None:
    fx.deliver(body(register(20, 0, 100), register(20, 30, 103)))
    fx.deliver(body(register(20, 50, 107)))
    assert [a.hour_start for a in fx.alerts.sent] == [H20]


def test_an_interval_reading_above_the_maximum_is_still_dead_lettered_beside_registers(fx: Fixture) -> None:
    outcome, _ = fx.deliver(body(register(20, 10, 100), register(20, 20, 150, device="kitchen")))
    assert [d.reason for d in outcome.dead] == ["measurement_value is above the maximum of 100.0 kWh"]
    assert fx.totals("kitchen") == {} and fx.totals() == {H20: Decimal(0)}


def test_a_writer_that_moved_the_registers_meanwhile_makes_the_hour_computed_again(fx: Fixture) -> None:
    fx.deliver(body(register(20, 10, 100)))
    # Given another consumer counts 20:20 between this one's reads and its write
    other = Fixture()
    other.hours = fx.hours
    other.ingestor = Ingestor(fx.hours, fx.alerts, lookup=lambda ids: {i: fx.meters.get(i) for i in ids},
                              clock=lambda: NOW, notify=lambda _: None, status=RecordingMeterStatus())
    fx.hours.before_register_write = lambda: other.deliver(body(register(20, 20, 103)))
    # When this one counts 20:30
    outcome, _ = fx.deliver(body(register(20, 30, 104)))
    # Then both count, against each other
    assert fx.totals() == {H20: Decimal(4)}
    assert outcome.failed == set()


_MOMENTS = [(20, 5), (20, 35), (21, 0), (21, 15), (21, 59), (22, 30)]
_VALUES = [100, 101.5, 99995, 2, 0.5, 7]  # a rollover (register_max 99999) then a reset


@pytest.mark.parametrize("seed", range(25))
def test_any_delivery_order_with_repeats_ends_in_the_hours_of_the_readings_in_time_order(fx: Fixture, seed: int) -> None:
    # Given readings delivered in batches of a random order, some twice
    readings = [register(h, m, v) for (h, m), v in zip(_MOMENTS, _VALUES, strict=True)]
    rng = random.Random(seed)
    delivery = readings + rng.sample(readings, 3)
    rng.shuffle(delivery)
    cuts = sorted(rng.sample(range(1, len(delivery)), 3))
    for start, end in itertools.pairwise([0, *cuts, len(delivery)]):
        fx.deliver(*[body(r) for r in delivery[start:end]])
    # Then the hours are those of the readings in time order
    expected = hourly({dt.datetime.fromisoformat(r["timestamp"]): r["measurement_value"] for r in readings},
                      Decimal(99999))
    assert fx.totals() == {hour: e.total_kwh for hour, e in expected.items()}
    assert sum(fx.totals().values()) == Decimal("1.5") + Decimal("99893.5") + 6 + Decimal("0.5") + Decimal("6.5")
    assert fx.resets() == {hour: e.reset for hour, e in expected.items()}



def test_only_the_devices_newest_hour_keeps_a_silence_deadline(fx: Fixture) -> None:
    # Given registers in two hours, then a late one in an earlier hour
    fx.deliver(body(register(20, 10, 100)))
    fx.deliver(body(register(21, 10, 101)))
    fx.deliver(body(register(19, 50, 99)))
    # Then the deadline moved from 20:00 to 21:00, and the late hour took none
    deadlines = {hour: h.silent_at is not None for (d, hour), h in sorted(fx.hours.hours.items()) if d == "boiler"}
    assert deadlines == {"2026-11-23T19:00:00Z": False, H20: False, H21: True}
