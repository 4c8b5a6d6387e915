"""Time-of-use tariffs over real HTTP: kept and shown as sent, bad lists refused with 422 and details
(never a 500, nothing stored), and history costed through the real path (readings on the queue,
the consumer, the replica): the day view, the range view, the CSV and the fleet page, each hour at
the rate in force at its local start; a changed list re-costs the same history.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.accounts import Account, api, assert_error, new_client
from tests.harness import RuntimeProcess, wait_for
from tests.sockets import stored_hours
from tests.tariff_examples import TWO_PERIODS

ZONE = "Europe/Bucharest"
SHOWN = [TWO_PERIODS[0], {**TWO_PERIODS[1], "weekend_rates": None}]  # as the API answers them


@pytest.fixture(scope="module")
def owner(ems: RuntimeProcess) -> Account:
    return new_client(ems, "tariffs")


def create(ems: RuntimeProcess, admin: Account, owner: Account | None = None, **fields: Any) -> dict[str, Any]:
    body = {"id": f"t-{uuid.uuid4().hex[:10]}", "name": f"Tariff meter {uuid.uuid4().hex[:6]}",
            "max_hourly_kwh": 100, "timezone": ZONE, "owner_ids": [owner.id] if owner else [], **fields}
    response = api(ems, "POST", "/devices", admin, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def wait_for_replica(ems: RuntimeProcess, device_id: str, version: int) -> None:
    meters = ems.client("dynamodb")

    def current() -> bool:
        item = meters.get_item(TableName=ems.name("meters"), Key={"device_id": {"S": device_id}},
                               ConsistentRead=True).get("Item")
        return item is not None and int(item["entity_version"]["N"]) >= version

    wait_for(current, what=f"version {version} of {device_id} in monitoring's replica")


def at(wall: str) -> str:
    """A local wall time of the device's zone as a UTC timestamp."""
    return dt.datetime.fromisoformat(wall).replace(tzinfo=ZoneInfo(ZONE)).astimezone(dt.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def send(ems: RuntimeProcess, device_id: str, readings: list[tuple[str, float]]) -> None:
    body = {"readings": [{"timestamp": t, "device_id": device_id, "measurement_value": kwh} for t, kwh in readings]}
    ems.client("sqs").send_message(QueueUrl=ems.queue_url("readings"), MessageBody=json.dumps(body))
    wait_for(lambda: len(stored_hours(ems, device_id)) >= len(readings), what="the readings counted")


def get(ems: RuntimeProcess, account: Account, path: str) -> Any:
    response = api(ems, "GET", path, account)
    assert response.status_code == 200, response.text
    return response.json()


# --- the contract -------------------------------------------------------------------------


def test_tariffs_are_kept_as_sent_and_an_update_replaces_or_empties_them(ems: RuntimeProcess, admin: Account) -> None:
    device = create(ems, admin, tariffs=TWO_PERIODS, tariff_per_kwh=0.3, currency="ron")
    assert (device["tariffs"], device["tariff_per_kwh"], device["currency"]) == (SHOWN, 0.3, "RON")
    assert get(ems, admin, f"/devices/{device['id']}")["tariffs"] == SHOWN

    changed = api(ems, "PUT", f"/devices/{device['id']}", admin, json={"tariffs": TWO_PERIODS[1:]})
    assert changed.status_code == 200 and changed.json()["tariffs"] == SHOWN[1:]
    renamed = api(ems, "PUT", f"/devices/{device['id']}", admin, json={"name": "Renamed"}).json()
    assert renamed["tariffs"] == SHOWN[1:]  # an update that does not name them keeps them
    emptied = api(ems, "PUT", f"/devices/{device['id']}", admin, json={"tariffs": []}).json()
    assert (emptied["tariffs"], emptied["tariff_per_kwh"]) == ([], 0.3)
    assert create(ems, admin)["tariffs"] == []  # a device made without them has none


def rates(*starts: str) -> list[dict[str, Any]]:
    return [{"start": s, "price_per_kwh": 0.1} for s in starts]


def tariff(from_: str = "2026-01-01", **fields: Any) -> dict[str, Any]:
    return {"from": from_, "currency": "EUR", "rates": rates("00:00"), **fields}


EVERY_HALF_HOUR_AND_ONE = rates(*[f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]) + rates("23:59")
BAD_TARIFFS: dict[str, tuple[Any, str]] = {
    # case: (the tariffs sent, the field the details must name)
    "unsorted from": ([tariff("2026-03-01"), tariff("2026-01-01")], "tariffs"),
    "overlapping from": ([tariff("2026-03-01"), tariff("2026-03-01")], "tariffs"),
    "first rate not at 00:00": ([tariff(rates=rates("06:00", "17:00"))], "tariffs.0.rates"),
    "first weekend rate not at 00:00": ([tariff(weekend_rates=rates("01:00"))], "tariffs.0.weekend_rates"),
    "times out of order": ([tariff(rates=rates("00:00", "21:00", "17:00"))], "tariffs.0.rates"),
    "two rates at one time": ([tariff(rates=rates("00:00", "17:00", "17:00"))], "tariffs.0.rates"),
    "negative price": ([tariff(rates=[{"start": "00:00", "price_per_kwh": -0.01}])],
                       "tariffs.0.rates.0.price_per_kwh"),
    "price a word": ([tariff(rates=[{"start": "00:00", "price_per_kwh": "cheap"}])],
                     "tariffs.0.rates.0.price_per_kwh"),
    "more than 48 rates a day": ([tariff(rates=EVERY_HALF_HOUR_AND_ONE)], "tariffs.0.rates"),
    "no rates": ([tariff(rates=[])], "tariffs.0.rates"),
    "time 24:00": ([tariff(rates=rates("00:00", "24:00"))], "tariffs.0.rates.1.start"),
    "time without minutes": ([tariff(rates=rates("00:00", "7"))], "tariffs.0.rates.1.start"),
    "from not a date": ([tariff("2026-02-30")], "tariffs.0.from"),
    "from in year 1": ([tariff("0001-01-01")], "tariffs.0.from"),
    "bad currency": ([tariff(currency="EURO")], "tariffs.0.currency"),
    "no currency": ([{"from": "2026-01-01", "rates": rates("00:00")}], "tariffs.0.currency"),
    "unknown field": ([tariff(peak_hours=3)], "tariffs.0.peak_hours"),
    "not a list": ({"from": "2026-01-01"}, "tariffs"),
    "a tariff not an object": (["2026-01-01"], "tariffs.0"),
    "too many tariffs": ([tariff(f"2026-01-{d:02d}") for d in range(1, 26)], "tariffs"),
}


@pytest.mark.parametrize("case", list(BAD_TARIFFS))
def test_bad_tariffs_get_422_naming_the_field_and_change_nothing(ems: RuntimeProcess, admin: Account,
                                                                 case: str) -> None:
    sent, field = BAD_TARIFFS[case]
    device_id = f"t-{uuid.uuid4().hex[:10]}"
    created = api(ems, "POST", "/devices", admin,
                  json={"id": device_id, "name": "Bad tariffs", "max_hourly_kwh": 1, "tariffs": sent})
    assert_error(created, 422, "validation_error", {field})
    assert_error(api(ems, "GET", f"/devices/{device_id}", admin), 404, "not_found")

    device = create(ems, admin, tariffs=TWO_PERIODS)
    updated = api(ems, "PUT", f"/devices/{device['id']}", admin, json={"tariffs": sent})
    assert_error(updated, 422, "validation_error", {field})
    assert get(ems, admin, f"/devices/{device['id']}") == device


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_price_gets_422(ems: RuntimeProcess, admin: Account, literal: str) -> None:
    device = create(ems, admin, tariffs=TWO_PERIODS)
    raw = ('{"tariffs": [{"from": "2026-01-01", "currency": "EUR", "rates": [{"start": "00:00", "price_per_kwh": '
           f'{literal}}}]}}]}}')
    response = api(ems, "PUT", f"/devices/{device['id']}", admin, data=raw,
                   headers={"Content-Type": "application/json"})
    assert_error(response, 422, "validation_error", {"tariffs.0.rates.0.price_per_kwh"})
    assert get(ems, admin, f"/devices/{device['id']}") == device


# --- history costed through the real path ---------------------------------------------------


def test_history_is_costed_hour_by_hour_at_the_rate_of_its_own_time(ems: RuntimeProcess, admin: Account,
                                                                      owner: Account) -> None:
    device = create(ems, admin, owner, tariffs=TWO_PERIODS)
    device_id = device["id"]
    wait_for_replica(ems, device_id, 1)
    send(ems, device_id, [
        (at("2025-12-31T12:10"), 1.0),  # before any tariff: no price
        (at("2026-01-14T16:10"), 1.0),  # Wednesday 16:00: 0.12
        (at("2026-01-14T17:10"), 2.0),  # Wednesday 17:00: 0.35
        (at("2026-01-17T18:10"), 2.0),  # Saturday: 0.10
        (at("2026-02-28T23:30"), 1.0),  # Saturday, last hour of the first tariff: 0.10
        (at("2026-03-01T00:30"), 1.0),  # the second tariff from local midnight: 0.20
    ])

    day = get(ems, owner, f"/devices/{device_id}/consumption?date=2026-01-14")
    by_hour = {h["start"][11:16]: h for h in day["hours"]}
    assert (by_hour["16:00"]["price_per_kwh"], by_hour["16:00"]["cost"]) == (0.12, 0.12)
    assert (by_hour["17:00"]["price_per_kwh"], by_hour["17:00"]["cost"]) == (0.35, 0.7)
    assert (by_hour["21:00"]["price_per_kwh"], by_hour["21:00"]["cost"]) == (0.12, None)
    assert (day["total_kwh"], day["cost"], day["currency"]) == (3.0, 0.82, "EUR")
    assert get(ems, owner, f"/devices/{device_id}/consumption?date=2026-01-17")["cost"] == 0.2
    before = get(ems, owner, f"/devices/{device_id}/consumption?date=2025-12-31")
    assert (before["total_kwh"], before["cost"], before["currency"]) == (1.0, None, None)

    switch = get(ems, owner, f"/devices/{device_id}/consumption?from=2026-02-28&to=2026-03-01&granularity=hour")
    costed = [(p["start"], p["cost"]) for p in switch["points"] if p["kwh"] is not None]
    assert costed == [("2026-02-28T23:00:00+02:00", 0.1), ("2026-03-01T00:00:00+02:00", 0.2)]
    assert (switch["cost"], switch["currency"], switch["uncosted_kwh"]) == (0.3, "EUR", 0.0)

    whole = get(ems, owner, f"/devices/{device_id}/consumption?from=2025-12-31&to=2026-03-01&granularity=day")
    assert (whole["total_kwh"], whole["cost"], whole["uncosted_kwh"]) == (8.0, None, 1.0)
    assert whole["costs"] == [{"currency": "EUR", "cost": 1.32}]
    assert whole["points"][0]["cost"] is None and whole["points"][-1]["cost"] == 0.2

    rows = list(csv.DictReader(io.StringIO(api(
        ems, "GET", f"/devices/{device_id}/consumption.csv?from=2026-01-14&to=2026-01-14", owner).text)))
    peak = next(r for r in rows if r["hour_start_local"] == "2026-01-14T17:00:00+02:00")
    assert (peak["kwh"], peak["price_per_kwh"], peak["cost"], peak["currency"]) == ("2.0", "0.35", "0.7", "EUR")

    # The list is the truth for every date: a new list re-costs the same history.
    changed = api(ems, "PUT", f"/devices/{device_id}", admin, json={"tariffs": [
        {"from": "2025-06-01", "currency": "RON", "rates": [{"start": "00:00", "price_per_kwh": 1}]},
        {"from": "2026-02-01", "currency": "EUR", "rates": [{"start": "00:00", "price_per_kwh": 0.5}]}]})
    assert changed.status_code == 200, changed.text
    day = get(ems, owner, f"/devices/{device_id}/consumption?date=2026-01-14")
    assert (day["cost"], day["currency"]) == (3.0, "RON")
    whole = get(ems, owner, f"/devices/{device_id}/consumption?from=2025-12-31&to=2026-03-01&granularity=day")
    assert (whole["cost"], whole["currency"], whole["uncosted_kwh"]) == (None, None, 0.0)  # two currencies
    assert whole["costs"] == [{"currency": "RON", "cost": 6.0}, {"currency": "EUR", "cost": 1.0}]


def test_the_fleet_page_costs_each_meters_today_at_its_tariff(ems: RuntimeProcess, admin: Account) -> None:
    marker = uuid.uuid4().hex[:8]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    ladder = [{"from": (today - dt.timedelta(days=400)).isoformat(), "currency": "EUR",
               "rates": [{"start": "00:00", "price_per_kwh": 0.4}]}]
    priced = create(ems, admin, name=f"Fleet tariff {marker} A", tariffs=ladder)
    later = create(ems, admin, name=f"Fleet tariff {marker} B",
                   tariffs=[{**ladder[0], "from": (today + dt.timedelta(days=1)).isoformat()}])
    for device in (priced, later):
        wait_for_replica(ems, device["id"], 1)
        send(ems, device["id"], [(now.strftime("%Y-%m-%dT%H:%M:%SZ"), 1.5)])

    def rows() -> list[dict[str, Any]] | None:
        page = get(ems, admin, f"/fleet?q=fleet%20tariff%20{marker}")
        found = page["items"]
        return found if len(found) == 2 and all(r["today_kwh"] for r in found) else None

    found = wait_for(rows, what="both meters with today's kWh in the fleet")
    costs = {r["device_id"]: (r["today_kwh"], r["today_cost"], r["currency"]) for r in found}
    assert costs == {priced["id"]: (1.5, 0.6, "EUR"), later["id"]: (1.5, None, None)}


def test_a_tariff_list_the_api_shows_can_be_sent_back_unchanged(ems: RuntimeProcess, admin: Account) -> None:
    device = create(ems, admin, tariffs=TWO_PERIODS)
    again = api(ems, "PUT", f"/devices/{device['id']}", admin, json={"tariffs": copy.deepcopy(device["tariffs"])})
    assert again.status_code == 200 and again.json()["tariffs"] == SHOWN
