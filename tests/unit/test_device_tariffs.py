"""A device's tariffs in the devices context (a faked DynamoDB in-process): kept and read back as
sent, carried whole by the device's events, replaced or emptied by an update, and devices kept
before tariffs existed read with none."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from chalicelib.devices.models import CreateDeviceRequest, UpdateDeviceRequest
from chalicelib.devices.repository import DeviceItem
from chalicelib.devices.service import DeviceService
from chalicelib.errors import Principal
from chalicelib.messages import SyncEvent
from tests.faked_stage import faked_stage

ADMIN = Principal("admin-1", "admin", "admin")
TARIFFS: list[dict[str, Any]] = [
    {"from": "2026-01-01", "currency": "EUR",
     "rates": [{"start": "00:00", "price_per_kwh": 0.12}, {"start": "17:00", "price_per_kwh": 0.35},
               {"start": "21:00", "price_per_kwh": 0.12}],
     "weekend_rates": [{"start": "00:00", "price_per_kwh": 0.10}]},
    {"from": "2026-03-01", "currency": "EUR", "rates": [{"start": "00:00", "price_per_kwh": 0.20}],
     "weekend_rates": None},
]


class Bus:
    def __init__(self) -> None:
        self.published: list[SyncEvent] = []

    def publish(self, topic: str, events: Sequence[SyncEvent]) -> list[SyncEvent]:
        self.published += events
        return []


@pytest.fixture
def stage() -> Iterator[str]:
    with faked_stage() as name:
        yield name


def shown(devices: DeviceService, device_id: str) -> list[dict[str, Any]]:
    return devices.get(ADMIN, device_id).model_dump(mode="json", by_alias=True)["tariffs"]


def test_a_device_keeps_its_tariffs_as_sent_and_its_event_carries_them(stage: str) -> None:
    bus = Bus()
    devices = DeviceService(user_exists=lambda user_id: True, publisher=bus)
    device = devices.create(CreateDeviceRequest.model_validate(
        {"id": "meter-1", "name": "Kitchen", "max_hourly_kwh": 2.5, "tariffs": TARIFFS}))
    assert device.model_dump(mode="json", by_alias=True)["tariffs"] == TARIFFS
    assert shown(devices, "meter-1") == TARIFFS
    (event,) = bus.published
    assert event.data["device"]["tariffs"] == TARIFFS


def test_an_update_replaces_the_whole_list_and_null_or_empty_removes_it(stage: str) -> None:
    bus = Bus()
    devices = DeviceService(user_exists=lambda user_id: True, publisher=bus)
    devices.create(CreateDeviceRequest.model_validate(
        {"id": "meter-1", "name": "Kitchen", "max_hourly_kwh": 2.5, "tariffs": TARIFFS}))

    devices.update("meter-1", UpdateDeviceRequest.model_validate({"tariffs": TARIFFS[1:]}))
    assert shown(devices, "meter-1") == TARIFFS[1:]
    devices.update("meter-1", UpdateDeviceRequest.model_validate({"name": "Kitchen 2"}))
    assert shown(devices, "meter-1") == TARIFFS[1:]  # an update that does not name them keeps them
    devices.update("meter-1", UpdateDeviceRequest.model_validate({"tariffs": None}))
    assert shown(devices, "meter-1") == []
    devices.update("meter-1", UpdateDeviceRequest.model_validate({"tariffs": TARIFFS}))
    devices.update("meter-1", UpdateDeviceRequest.model_validate({"tariffs": []}))
    assert shown(devices, "meter-1") == []
    assert DeviceItem.get("meter-1").tariffs is None
    assert [e.data["device"]["tariffs"] for e in bus.published] == [TARIFFS, TARIFFS[1:], TARIFFS[1:], [], TARIFFS,
                                                                    []]


def test_a_device_kept_before_tariffs_existed_reads_with_none(stage: str) -> None:
    # Given an item as an earlier version wrote it: no tariffs attribute at all
    DeviceItem("old-1", name="Old", max_hourly_kwh=1, timezone="UTC", created_at="2025-01-01T00:00:00+00:00",
               tariff_per_kwh=0.3, currency="EUR", listing="all", name_key="old\x00old-1").save()
    raw = DeviceItem.get("old-1").serialize()
    assert "tariffs" not in raw
    devices = DeviceService(user_exists=lambda user_id: True, publisher=Bus())
    # Then it reads with an empty list and its flat rate
    device = devices.get(ADMIN, "old-1")
    assert (device.tariffs, device.tariff_per_kwh, device.currency) == ([], 0.3, "EUR")
    assert json.loads(device.model_dump_json(by_alias=True))["tariffs"] == []
