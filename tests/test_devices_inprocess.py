"""The devices context in-process against a faked DynamoDB and an event bus that fails on purpose.

Given a device with an owner and an API key, a deletion whose `device.deleted` event cannot be
published must be undone completely: the device, its owner and its API key are back, and the
meter's key goes on working.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import errors
from chalicelib.devices import repository
from chalicelib.devices.models import CreateDeviceRequest
from chalicelib.devices.repository import ApiKeyItem, DeviceItem, OwnerItem
from chalicelib.devices.service import DeviceService
from chalicelib.http import Principal
from chalicelib.platform.publisher import Event
from tests.faked_stage import faked_stage

ADMIN = Principal("admin-1", "admin", "admin")


class FailingBus:
    """Publishes everything but the event types in `failing`."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.published: list[str] = []

    def publish(self, topic: str, event: Event) -> None:
        if event.type in self.failing:
            raise errors.DependencyUnavailableError("The event bus is unavailable; nothing was changed.")
        self.published.append(event.type)


@pytest.fixture
def stage() -> Iterator[str]:
    with faked_stage(DeviceItem, OwnerItem, ApiKeyItem) as name:
        yield name


def test_a_deletion_whose_event_fails_puts_back_the_device_its_owner_and_its_api_keys(stage: str) -> None:
    # Given a device with an owner and an API key
    bus = FailingBus({"device.deleted"})
    devices = DeviceService(user_exists=lambda user_id: True, publisher=bus)
    device = devices.create(CreateDeviceRequest(id="meter-1", name="Kitchen", max_hourly_kwh=2.5,
                                                owner_ids=["alice"]))
    key = devices.create_api_key(device.id)
    assert devices.device_for_api_key(key.api_key) == "meter-1"
    # When its deletion cannot publish its event
    with pytest.raises(errors.DependencyUnavailableError):
        devices.delete(device.id)
    # Then everything is back: the device, its owner, and the meter's key still works
    assert devices.get(ADMIN, "meter-1").owner_ids == ["alice"]
    assert devices.device_for_api_key(key.api_key) == "meter-1"
    assert [k.key_id for k in repository.keys_of("meter-1")] == [key.key_id]
    assert "device.deleted" not in bus.published
