"""The devices context in-process against a faked DynamoDB and an event bus that fails on purpose.

Every change writes its event in the same transaction (the outbox): a change whose event cannot be
published stands, its event waits in the outbox, and the relay publishes it, unchanged. A deletion
removes the device, its owners and its API keys with its event, in one write.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from chalicelib import errors
from chalicelib.devices import repository
from chalicelib.devices.models import CreateDeviceRequest, UpdateDeviceRequest
from chalicelib.devices.repository import DeviceItem, OwnerItem
from chalicelib.devices.service import DeviceService
from chalicelib.errors import Principal
from chalicelib.messages import SyncEvent
from chalicelib.platform import outbox
from tests.aws_calls import counted_calls
from tests.faked_stage import faked_stage

ADMIN = Principal("admin-1", "admin", "admin")


class FailingBus:
    """Publishes everything but the event types in `failing`."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.published: list[SyncEvent] = []

    def publish(self, topic: str, events: Sequence[SyncEvent]) -> list[SyncEvent]:
        assert topic == "devices-events"
        self.published += [event for event in events if event.type not in self.failing]
        return [event for event in events if event.type in self.failing]

    def types(self) -> list[str]:
        return [event.type for event in self.published]


@pytest.fixture
def stage() -> Iterator[str]:
    with faked_stage() as name:
        yield name


STORE = repository.DynamoDevices()


def owners(device_id: str) -> list[str]:
    return [o.user_id for o in OwnerItem.query(device_id, consistent_read=True)]


def staged() -> list[dict]:
    return [json.loads(item.message) for item in outbox.OutboxItem.query("devices-events")]


def kitchen(devices: DeviceService, owners: list[str]) -> str:
    return devices.create(CreateDeviceRequest(id="meter-1", name="Kitchen", max_hourly_kwh=2.5, owner_ids=owners)).id


def test_every_change_whose_event_fails_stands_and_the_relay_publishes_its_events_in_order(stage: str) -> None:
    bus = FailingBus({"device.created", "device.updated", "device.owner_added", "device.owner_removed"})
    devices = DeviceService(user_exists=lambda user_id: True, publisher=bus)

    device_id = kitchen(devices, ["alice"])
    devices.update(device_id, UpdateDeviceRequest(max_hourly_kwh=3.0))
    devices.add_owner(device_id, "bob")
    devices.remove_owner(device_id, "alice")

    assert devices.get(ADMIN, device_id).owner_ids == ["bob"]
    assert bus.published == []
    assert [(e["type"], e["entity_version"]) for e in staged()] == [
        ("device.created", 1), ("device.updated", 2), ("device.owner_added", 3), ("device.owner_removed", 4)]
    assert staged()[-1]["data"]["device"]["owner_ids"] == ["bob"]
    assert staged()[1]["data"]["device"]["max_hourly_kwh"] == 3.0

    waiting = staged()
    bus.failing.clear()
    assert outbox.Outbox(bus).relay(grace_s=0) == 4
    assert [e.model_dump() for e in bus.published] == waiting
    assert bus.types() == ["device.created", "device.updated", "device.owner_added", "device.owner_removed"]
    assert staged() == []


def test_a_deletion_whose_event_fails_stands_and_its_event_waits_for_the_relay(stage: str) -> None:
    # Given a device with an owner and an API key
    bus = FailingBus({"device.deleted"})
    devices = DeviceService(user_exists=lambda user_id: True, publisher=bus)
    device_id = kitchen(devices, ["alice"])
    key = devices.create_api_key(device_id)
    # When its deletion cannot publish its event
    devices.delete(device_id)
    # Then the device, its owner and its key are gone, and the event waits in the outbox
    with pytest.raises(errors.NotFoundError):
        devices.get(ADMIN, device_id)
    with pytest.raises(errors.UnauthorizedError):
        devices.device_for_api_key(key.api_key)
    assert owners(device_id) == [] and STORE.keys_of(device_id) == []
    (event,) = staged()
    assert (event["type"], event["entity_version"], event["data"]["device"]["owner_ids"]) == (
        "device.deleted", 2, ["alice"])
    bus.failing.clear()
    assert outbox.Outbox(bus).relay(grace_s=0) == 1
    assert bus.types() == ["device.created", "device.deleted"]
    assert bus.published[-1].model_dump() == event


def test_a_device_created_again_over_its_tombstone_continues_its_versions(stage: str) -> None:
    bus = FailingBus(set())
    devices = DeviceService(user_exists=lambda user_id: True, publisher=bus)
    kitchen(devices, ["alice"])
    devices.delete("meter-1")
    kitchen(devices, ["bob"])

    assert [(e.type, e.entity_version) for e in bus.published] == [
        ("device.created", 1), ("device.deleted", 2), ("device.created", 3)]
    with pytest.raises(errors.ConflictError):
        kitchen(devices, [])
    assert bus.types()[-1] == "device.created" and len(bus.published) == 3 and staged() == []


def test_a_deletion_with_more_owners_and_keys_than_one_transaction_takes_removes_them_all(stage: str) -> None:
    devices = DeviceService(user_exists=lambda user_id: True, publisher=FailingBus(set()))
    device_id = kitchen(devices, [f"user-{n}" for n in range(50)])
    for n in range(50, 80):
        devices.add_owner(device_id, f"user-{n}")
    keys = [devices.create_api_key(device_id) for _ in range(40)]

    devices.delete(device_id)

    assert owners(device_id) == [] and STORE.keys_of(device_id) == []
    assert all(STORE.get_key(k.key_id) is None for k in keys)
    assert STORE.get(device_id) is None


def test_the_admin_list_is_by_name_with_a_prefix_search_read_from_an_index(stage: str) -> None:
    devices = DeviceService(user_exists=lambda _: True, publisher=FailingBus(set()))
    for device_id, name in [("d1", "kitchen"), ("d2", "Attic"), ("d3", "Kettle room"), ("d4", "barn")]:
        devices.create(CreateDeviceRequest(id=device_id, name=name, max_hourly_kwh=1.0, owner_ids=[]))
    devices.delete("d4")
    with counted_calls() as operations:
        first = devices.list_for(ADMIN, 2, None)
        second = devices.list_for(ADMIN, 2, first.next_cursor)
        searched = devices.list_for(ADMIN, 10, None, "K")

    assert [d.name for d in first.items + second.items] == ["Attic", "Kettle room", "kitchen"]
    assert second.next_cursor is None
    assert [d.id for d in searched.items] == ["d3", "d1"]
    assert operations and "Scan" not in operations
    with pytest.raises(errors.ValidationError):  # a cursor of another search
        devices.list_for(ADMIN, 10, first.next_cursor, "a")


def test_devices_kept_before_the_list_by_name_are_listed_once(stage: str) -> None:
    DeviceItem("old", name="Old meter", max_hourly_kwh=1, timezone="UTC", created_at="2026-01-01").save()
    assert repository.backfill_listing() == 1
    assert repository.backfill_listing() == 0
    assert [d.id for d in STORE.list_page(10, None)[0]] == ["old"]
