"""Register devices through real SQS and DynamoDB: cumulative registers sent to the readings queue
out of order, repeated and late, counted as the differences between consecutive readings, read back
from the table and over HTTP (the day view marks the hour of a reset)."""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.monitoring.registers import hourly
from tests.accounts import Account, api, assert_error, new_client
from tests.e2e.test_metering_sqs import alerts_of, send
from tests.harness import RuntimeProcess, wait_for
from tests.sockets import stored_hours

UTC = dt.UTC
START = dt.datetime(2026, 6, 14, 21, 0, tzinfo=UTC)  # 00:00 of 2026-06-15 in Europe/Bucharest


@pytest.fixture(scope="module")
def owner(ems: RuntimeProcess) -> Account:
    return new_client(ems, "register-owner")


def make_register_device(ems: RuntimeProcess, admin: Account, owner: Account, limit: float = 1000.0,
                         register_max: float | None = None) -> str:
    device_id = f"r-{uuid.uuid4().hex[:10]}"
    body: dict[str, Any] = {"id": device_id, "name": f"Register {device_id}", "max_hourly_kwh": limit,
                            "timezone": "Europe/Bucharest", "owner_ids": [owner.id], "reading_kind": "register"}
    if register_max is not None:
        body["register_max_kwh"] = register_max
    assert api(ems, "POST", "/devices", admin, json=body).status_code == 201
    meters = ems.client("dynamodb")
    wait_for(lambda: (meters.get_item(TableName=ems.name("meters"), Key={"device_id": {"S": device_id}})
                      .get("Item", {}).get("reading_kind", {}).get("S")) == "register",
             what="the register device in monitoring's replica")
    return device_id


def registers(device_id: str, rng: random.Random, count: int, start_kwh: float = 48_000.0,
              reset_at: int | None = None) -> list[dict[str, Any]]:
    """A register read every 10 minutes, rising; from `reset_at` on it starts again near zero."""
    value, out = Decimal(str(start_kwh)), []
    for i in range(count):
        if i == reset_at:
            value = Decimal("0.5")
        else:
            value += Decimal(str(round(rng.uniform(0.0, 0.4), 3)))
        out.append({"timestamp": (START + dt.timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "device_id": device_id, "measurement_value": float(value)})
    return out


def expected(readings: list[dict[str, Any]], register_max: float | None = None) -> dict[str, Decimal]:
    values = {dt.datetime.fromisoformat(r["timestamp"]): Decimal(str(r["measurement_value"])) for r in readings}
    limit = None if register_max is None else Decimal(str(register_max))
    return {hour: energy.total_kwh for hour, energy in hourly(values, limit).items()}


def test_registers_out_of_order_repeated_and_late_give_the_differences_in_time_order(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    # Given a day of registers with a reset, sent shuffled, a third of them twice, in batch messages too
    rng = random.Random(5)
    device_id = make_register_device(ems, admin, owner)
    readings = registers(device_id, rng, 24 * 6, reset_at=80)
    late = readings[40::7]  # these arrive only after the rest was counted
    first = [r for r in readings if r not in late]
    bodies: list[Any] = first + rng.sample(first, len(first) // 3)
    rng.shuffle(bodies)
    send(ems, bodies[:60] + [json.dumps({"readings": bodies[60:70]})] + bodies[70:])
    wait_for(lambda: stored_hours(ems, device_id) == expected(first), timeout_s=90,
             what="the registers' differences before the late readings")
    # When the late readings arrive, each between two counted ones
    send(ems, late + late[:3])
    # Then energy moves between hours and the totals are those of every reading in time order
    wait_for(lambda: stored_hours(ems, device_id) == expected(readings), timeout_s=90,
             what="the registers' differences with the late readings")
    day = api(ems, "GET", f"/devices/{device_id}/consumption?date=2026-06-15", owner).json()
    assert Decimal(str(day["total_kwh"])) == round(sum(expected(readings).values()), 6)
    reset_hour = (START + dt.timedelta(minutes=10 * 80)).astimezone(dt.timezone(dt.timedelta(hours=3)))
    marked = [h["start"][:13] for h in day["hours"] if h["reset"]]
    assert marked == [reset_hour.strftime("%Y-%m-%dT%H")]


def test_a_rollover_counts_across_the_maximum_and_crossing_the_limit_raises_one_alert(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    device_id = make_register_device(ems, admin, owner, limit=1.0, register_max=99999.9)
    hour = START + dt.timedelta(hours=5)
    values = [99999.2, 99999.6, 0.3, 0.5]  # 0.4, then 0.3 + 0.3 over the maximum, then 0.2: 1.2 in the hour
    readings = [{"timestamp": (hour + dt.timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "device_id": device_id, "measurement_value": v} for i, v in enumerate(values)]
    send(ems, list(reversed(readings)) * 2)
    wait_for(lambda: stored_hours(ems, device_id) == {hour.strftime("%Y-%m-%dT%H:00:00Z"): Decimal("1.2")},
             timeout_s=60, what="the rollover counted")
    wait_for(lambda: len(alerts_of(ems, device_id)) == 1, what="one over-consumption alert")
    # Counted as registers, its hours would be wrong as intervals: the kind is fixed now
    error = assert_error(api(ems, "PUT", f"/devices/{device_id}", admin, json={"reading_kind": "interval"}),
                         409, "conflict")
    assert "can no longer change" in error["message"]
    assert api(ems, "GET", f"/devices/{device_id}", admin).json()["reading_kind"] == "register"


def test_registers_over_http_may_exceed_an_interval_readings_maximum(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    # Given a register device and an interval one, each with its API key
    register_id = make_register_device(ems, admin, owner)
    register_key = api(ems, "POST", f"/devices/{register_id}/api-keys", admin).json()["api_key"]
    interval_id = f"i-{uuid.uuid4().hex[:10]}"
    assert api(ems, "POST", "/devices", admin, json={"id": interval_id, "name": "Interval", "max_hourly_kwh": 5,
                                                     "owner_ids": [owner.id]}).status_code == 201
    interval_key = api(ems, "POST", f"/devices/{interval_id}/api-keys", admin).json()["api_key"]
    # When registers far above the interval maximum are posted for both
    registers_of = [{"timestamp": f"2026-06-13T09:{m}:00Z", "measurement_value": v}
                    for m, v in (("10", 51000.25), ("20", 51001.0))]
    accepted = api(ems, "POST", "/readings", headers={"X-Api-Key": register_key},
                   json={"readings": [{**r, "device_id": register_id} for r in registers_of]})
    refused = api(ems, "POST", "/readings", headers={"X-Api-Key": interval_key},
                  json={"readings": [{**r, "device_id": interval_id} for r in registers_of]})
    # Then the register device's count as their difference and the interval device's are refused
    assert accepted.status_code == 202 and accepted.json() == {"accepted": 2, "rejected": []}
    assert refused.status_code == 202 and refused.json()["accepted"] == 0
    assert [r["index"] for r in refused.json()["rejected"]] == [0, 1]
    wait_for(lambda: stored_hours(ems, register_id) == {"2026-06-13T09:00:00Z": Decimal("0.75")},
             what="the HTTP registers counted")


def test_two_more_consumers_racing_on_one_register_device_give_exact_totals(
    ems: RuntimeProcess, admin: Account, owner: Account
) -> None:
    """The runtime's own pollers and two more consumers in this process share the registers of one device."""
    from tests.consumers import run_consumers

    device_id = make_register_device(ems, admin, owner)
    readings = registers(device_id, random.Random(13), 60, reset_at=30)
    shuffled = readings + readings
    random.Random(2).shuffle(shuffled)
    send(ems, shuffled)
    run_consumers(ems, count=2, seconds=8)
    wait_for(lambda: stored_hours(ems, device_id) == expected(readings), timeout_s=90,
             what="exact register totals with racing consumers")
