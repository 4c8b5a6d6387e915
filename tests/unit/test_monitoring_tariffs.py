"""Tariffs in the monitoring context (moto in-process): the replica keeps what device events carry
(none from events and items kept before tariffs), refuses a bad list as a malformed event, and
the fleet page costs each meter's today at its own prices."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.messages import InvalidMessage
from chalicelib.monitoring import replica
from chalicelib.monitoring.domain import WriteStats
from chalicelib.monitoring.fleet import Fleet, FleetQuery
from chalicelib.monitoring.readings import Reading
from chalicelib.monitoring.replica import DynamoMeterStatus, MeterItem
from chalicelib.monitoring.totals import DynamoHourTotals

NOW = dt.datetime(2026, 11, 23, 20, 30, tzinfo=dt.UTC)  # a Monday
PEAK = [{"from": "2026-01-01", "currency": "EUR",
         "rates": [{"start": "00:00", "price_per_kwh": 0.1}, {"start": "20:00", "price_per_kwh": 0.5}],
         "weekend_rates": None}]


def event(device_id: str, version: int = 1, **device: Any) -> str:
    state = {"id": device_id, "name": device_id, "max_hourly_kwh": 1.0, "timezone": "UTC", "owner_ids": [], **device}
    return json.dumps({"type": "device.created" if version == 1 else "device.updated", "event_id": str(uuid.uuid4()),
                       "schema_version": 1, "entity_id": device_id, "entity_version": version,
                       "occurred_at": "2026-11-23T10:00:00+00:00", "data": {"device": state}})


def report(device_id: str, kwh: str, at: dt.datetime) -> None:
    DynamoHourTotals().add(device_id, at.strftime("%Y-%m-%dT%H:00:00Z"), [Reading(device_id, at, Decimal(kwh))],
                           WriteStats())
    DynamoMeterStatus().reported(device_id)


def test_the_replica_keeps_the_tariffs_an_event_carries_and_the_next_event_replaces_them(meter_stage: str) -> None:
    assert replica.apply(replica.parse(event("m-1", tariffs=PEAK)))
    meter = replica.get("m-1")
    assert meter is not None
    assert [t.model_dump(mode="json", by_alias=True) for t in meter.tariffs] == PEAK
    assert replica.apply(replica.parse(event("m-1", 2, tariffs=[])))
    assert replica.get("m-1").tariffs == ()  # type: ignore[union-attr]
    assert MeterItem.get("m-1").tariffs is None


def test_events_and_meters_from_before_tariffs_have_none(meter_stage: str) -> None:
    assert replica.apply(replica.parse(event("m-old", tariff_per_kwh=0.3, currency="EUR")))
    assert replica.get("m-old").tariffs == ()  # type: ignore[union-attr]
    MeterItem("m-kept", name="Kept", max_hourly_kwh=1, timezone="UTC", entity_version=1).save()
    assert replica.get("m-kept").tariffs == ()  # type: ignore[union-attr]


@pytest.mark.parametrize("tariffs", [
    [{"from": "2026-03-01", "currency": "EUR", "rates": [{"start": "00:00", "price_per_kwh": 1}]},
     {"from": "2026-01-01", "currency": "EUR", "rates": [{"start": "00:00", "price_per_kwh": 1}]}],
    [{"from": "2026-01-01", "currency": "EUR", "rates": [{"start": "01:00", "price_per_kwh": 1}]}],
    [{"from": "2026-01-01", "currency": "EUR", "rates": [{"start": "00:00", "price_per_kwh": -1}]}],
    "flat",
], ids=["unsorted", "first rate not at midnight", "negative price", "not a list"])
def test_an_event_with_bad_tariffs_is_malformed_and_writes_nothing(meter_stage: str, tariffs: Any) -> None:
    with pytest.raises(InvalidMessage):
        replica.apply(replica.parse(event("m-bad", tariffs=tariffs)))
    assert replica.get("m-bad") is None


def test_the_fleet_costs_each_meters_today_at_its_own_prices(meter_stage: str) -> None:
    replica.apply(replica.parse(event("a-peak", tariffs=PEAK)))
    replica.apply(replica.parse(event("b-flat", tariff_per_kwh=0.2, currency="RON")))
    replica.apply(replica.parse(event("c-none")))
    replica.apply(replica.parse(event("d-later", tariffs=[{**PEAK[0], "from": "2026-12-01"}])))
    for device_id in ("a-peak", "b-flat", "c-none", "d-later"):
        report(device_id, "1", NOW.replace(hour=10))  # 0.1 on the peak tariff
        report(device_id, "2", NOW)  # 20:30: the peak's 0.5
    report("a-peak", "4", NOW - dt.timedelta(days=1))  # yesterday: not today's

    page = Fleet(dict, clock=lambda: NOW).page(FleetQuery())

    rows = {row.device_id: (row.today_kwh, row.today_cost, row.currency) for row in page.items}
    assert rows == {"a-peak": (3.0, 1.1, "EUR"), "b-flat": (3.0, 0.6, "RON"), "c-none": (3.0, None, None),
                    "d-later": (3.0, None, None)}
