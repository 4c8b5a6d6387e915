"""The devices context's use cases through in-memory fakes: who sees what, shared ownership,
versions and events, API keys. No endpoint, no process."""

from __future__ import annotations

import pytest

from chalicelib import errors
from chalicelib.devices.models import CreateDeviceRequest, UpdateDeviceRequest
from chalicelib.devices.service import DeviceService
from chalicelib.errors import Principal
from tests.unit.fakes import InMemoryDevices, RecordingEvents

ADMIN = Principal("admin-1", "admin", "admin")
ALICE = Principal("alice", "alice", "client")
BOB = Principal("bob", "bob", "client")
USERS = {"alice", "bob", "carol"}


@pytest.fixture
def reported() -> set[str]:
    """The devices monitoring has a reading of."""
    return set()


@pytest.fixture
def devices(store: InMemoryDevices, events: RecordingEvents, reported: set[str]) -> DeviceService:
    return DeviceService(user_exists=USERS.__contains__, repository=store, events=events,
                         has_reported=reported.__contains__)


def kitchen(devices: DeviceService, *owners: str, device_id: str = "meter-1") -> str:
    return devices.create(CreateDeviceRequest(id=device_id, name="Kitchen", max_hourly_kwh=2.5,
                                              owner_ids=list(owners))).id


def test_a_client_sees_only_the_devices_it_owns_and_others_are_not_found(devices: DeviceService) -> None:
    kitchen(devices, "alice")
    kitchen(devices, "bob", device_id="meter-2")

    assert [d.id for d in devices.list_for(ALICE, 100, None).items] == ["meter-1"]
    assert devices.get(ALICE, "meter-1").owner_ids == ["alice"]
    with pytest.raises(errors.NotFoundError):
        devices.get(ALICE, "meter-2")
    with pytest.raises(errors.NotFoundError):
        devices.of_user(ALICE, "bob")  # another user's list is not even said to exist
    assert not devices.can_see(ALICE, "meter-2") and devices.can_see(ADMIN, "meter-2")
    assert [d.id for d in devices.list_for(ADMIN, 100, None).items] == ["meter-1", "meter-2"]


def test_a_device_has_several_owners_and_each_change_publishes_its_state_and_next_version(
    devices: DeviceService, store: InMemoryDevices, events: RecordingEvents
) -> None:
    kitchen(devices, "alice")
    devices.add_owner("meter-1", "bob")
    devices.add_owner("meter-1", "bob")  # again: nothing changes, nothing is published
    devices.update("meter-1", UpdateDeviceRequest(max_hourly_kwh=3.0))
    devices.remove_owner("meter-1", "alice")
    devices.remove_owner("meter-1", "alice")

    assert [(e.event.type, e.event.entity_version) for e in events.delivered] == [
        ("device.created", 1), ("device.owner_added", 2), ("device.updated", 3), ("device.owner_removed", 4)]
    assert events.delivered == store.staged  # each event was stored with its change, then published
    last = events.delivered[-1].event
    assert last.data["device"]["owner_ids"] == ["bob"] and last.data["device"]["max_hourly_kwh"] == 3.0
    assert last.data["user_id"] == "alice"
    assert devices.get(BOB, "meter-1").owner_ids == ["bob"]
    with pytest.raises(errors.NotFoundError):
        devices.get(ALICE, "meter-1")


def test_owners_must_be_existing_users(devices: DeviceService, events: RecordingEvents) -> None:
    with pytest.raises(errors.ValidationError) as refused:
        kitchen(devices, "alice", "mallory")
    assert [d.message for d in refused.value.details] == ["no such user: mallory"]
    kitchen(devices, "alice")
    with pytest.raises(errors.NotFoundError):
        devices.add_owner("meter-1", "mallory")
    assert events.types() == ["device.created"]


def test_required_fields_cannot_be_emptied_and_an_empty_update_changes_nothing(
    devices: DeviceService, events: RecordingEvents
) -> None:
    kitchen(devices, "alice")
    with pytest.raises(errors.ValidationError):
        devices.update("meter-1", UpdateDeviceRequest(name=None))
    assert devices.update("meter-1", UpdateDeviceRequest()).name == "Kitchen"
    assert events.types() == ["device.created"]


def test_a_taken_id_conflicts_and_a_device_created_again_continues_its_versions(
    devices: DeviceService, events: RecordingEvents
) -> None:
    kitchen(devices, "alice")
    with pytest.raises(errors.ConflictError):
        kitchen(devices)
    devices.delete("meter-1")
    kitchen(devices, "bob")

    assert [(e.event.type, e.event.entity_version) for e in events.delivered] == [
        ("device.created", 1), ("device.deleted", 2), ("device.created", 3)]


def test_a_deleted_users_ownerships_are_removed_one_event_each(devices: DeviceService, events: RecordingEvents) -> None:
    kitchen(devices, "alice", "bob")
    kitchen(devices, "alice", device_id="meter-2")

    assert devices.forget_user("alice") == 2
    assert devices.forget_user("alice") == 0  # a redelivered user.deleted changes nothing
    assert events.types()[-2:] == ["device.owner_removed", "device.owner_removed"]
    assert devices.of_user(ADMIN, "alice").items == []


def test_an_api_key_names_its_device_until_revoked_or_the_device_is_deleted(devices: DeviceService) -> None:
    kitchen(devices, "alice")
    key = devices.create_api_key("meter-1")

    assert devices.device_for_api_key(key.api_key) == "meter-1"
    for forged in ("", key.key_id, f"{key.key_id}.wrong", f"unknown.{key.api_key.partition('.')[2]}"):
        with pytest.raises(errors.UnauthorizedError):
            devices.device_for_api_key(forged)
    assert [k.key_id for k in devices.list_api_keys("meter-1").items] == [key.key_id]
    with pytest.raises(errors.NotFoundError):
        devices.revoke_api_key("meter-2", key.key_id)  # not this device's key
    devices.revoke_api_key("meter-1", key.key_id)
    with pytest.raises(errors.UnauthorizedError):
        devices.device_for_api_key(key.api_key)

    second = devices.create_api_key("meter-1")
    devices.delete("meter-1")
    with pytest.raises(errors.UnauthorizedError):
        devices.device_for_api_key(second.api_key)


def test_the_reading_kind_changes_until_the_first_reading_and_then_no_more(
    devices: DeviceService, events: RecordingEvents, reported: set[str]
) -> None:
    kitchen(devices, "alice")
    assert devices.update("meter-1", UpdateDeviceRequest(reading_kind="register")).reading_kind == "register"
    reported.add("meter-1")
    with pytest.raises(errors.ConflictError, match="can no longer change"):
        devices.update("meter-1", UpdateDeviceRequest(reading_kind="interval"))
    # The same kind again, or any other field, is still a change like any
    same = devices.update("meter-1", UpdateDeviceRequest(reading_kind="register", register_max_kwh=99999, name="K2"))
    assert (same.reading_kind, same.register_max_kwh, same.name) == ("register", 99999, "K2")
    assert events.types() == ["device.created", "device.updated", "device.updated"]
