"""Importing meters from CSV through in-memory fakes: created, updated, unchanged and rejected
rows; a bad row changes nothing and stops nothing; a file sent again creates nothing twice."""

from __future__ import annotations

import pytest

from chalicelib import errors
from chalicelib.devices import importing
from chalicelib.devices.models import ImportResult, UpdateDeviceRequest
from chalicelib.devices.service import DeviceService
from chalicelib.errors import Principal
from tests.unit.fakes import InMemoryDevices, RecordingEvents

ADMIN = Principal("admin-1", "admin", "admin")
USERS = {"alice": "u-alice", "bob": "u-bob"}
HEADER = "serial,name,address,max_hourly_kwh,timezone,owners\n"


@pytest.fixture
def devices(store: InMemoryDevices, events: RecordingEvents) -> DeviceService:
    def ids(names: list[str]) -> dict[str, str]:
        return {name: USERS[name.lower()] for name in names if name.lower() in USERS}

    return DeviceService(user_exists=set(USERS.values()).__contains__, repository=store, events=events, user_ids=ids)


def csv(*rows: str, header: str = HEADER) -> bytes:
    return (header + "\n".join(rows) + "\n").encode()


def problems(result: ImportResult) -> dict[int, list[str]]:
    return {r.row: [f"{p.field}: {p.message}" for p in r.problems] for r in result.rejected}


def test_new_serials_create_devices_with_their_owners_and_events(
    devices: DeviceService, store: InMemoryDevices, events: RecordingEvents
) -> None:
    result = devices.import_csv(csv("SN-1,Kitchen,Main St 1,2.5,Europe/Bucharest,alice;BOB",
                                    'SN-2,"Garage, north",,1,,'))

    assert [(r.row, r.serial) for r in result.created] == [(1, "SN-1"), (2, "SN-2")]
    assert result.updated == result.unchanged == result.rejected == []
    first = store.get(result.created[0].device_id)
    assert first is not None and first.serial == "SN-1" and first.owner_ids == {"u-alice", "u-bob"}
    assert (first.name, first.address, first.max_hourly_kwh, first.timezone) == (
        "Kitchen", "Main St 1", 2.5, "Europe/Bucharest")
    second = store.get(result.created[1].device_id)
    assert second is not None and second.name == "Garage, north" and second.owner_ids == frozenset()
    assert second.timezone == "UTC"  # the default zone
    assert events.types() == ["device.created", "device.created"] and events.delivered == store.staged
    assert [d.serial for d in devices.list_for(ADMIN, 10, None).items] == ["SN-2", "SN-1"]


def test_a_known_serial_updates_its_device_and_a_file_sent_again_creates_nothing_twice(
    devices: DeviceService, store: InMemoryDevices, events: RecordingEvents
) -> None:
    body = csv("SN-1,Kitchen,,2.5,,alice", "SN-2,Garage,,1,,")
    first = devices.import_csv(body)
    again = devices.import_csv(body)  # a client's retry

    assert len(store.devices) == 2 and again.created == again.updated == []
    assert [(r.row, r.device_id) for r in again.unchanged] == [(r.row, r.device_id) for r in first.created]

    changed = devices.import_csv(csv("SN-1,Kitchen (new),Main St,3,Europe/Paris,bob", "SN-2,Garage,,1,,"))
    assert [r.serial for r in changed.updated] == ["SN-1"] and [r.serial for r in changed.unchanged] == ["SN-2"]
    device = store.get(first.created[0].device_id)
    assert device is not None and device.version == 2 and device.owner_ids == {"u-bob"}  # the row's owners
    assert (device.name, device.address, device.max_hourly_kwh, device.timezone) == (
        "Kitchen (new)", "Main St", 3.0, "Europe/Paris")
    assert events.types() == ["device.created", "device.created", "device.updated"]
    assert events.delivered[-1].event.data["device"]["owner_ids"] == ["u-bob"]


def test_each_bad_row_is_rejected_with_its_reasons_and_the_others_are_imported(
    devices: DeviceService, store: InMemoryDevices
) -> None:
    result = devices.import_csv(csv(
        "SN-1,Good,,1,,",
        "SN-2,=HYPERLINK(\"http://x\"),,1,,",   # a formula
        "SN-3,Bad limit,,-1,,",
        "SN-4,Bad limit,,NaN,,",
        "SN-5,Zone,,1,Mars/Olympus,",
        "SN-6,Owner,,1,,alice;mallory",
        "SN-7,Short,1",
        "SN-8,Twice,,1,,",
        "SN-8,Twice again,,1,,",
        "bad serial!,Name,,1,,",
        ",No serial,,1,,",
        "SN-9,@SUM(A1),+1,1,,",
        "SN-10,Fine too,,0.5,,",
    ))

    assert [r.serial for r in result.created] == ["SN-1", "SN-10"]
    assert sorted(d.serial or "" for d in store.devices.values()) == ["SN-1", "SN-10"]
    found = problems(result)
    assert list(found) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert found[2] == ["name: looks like a formula (starts with '=')"]
    assert found[3][0].startswith("max_hourly_kwh:") and found[4][0].startswith("max_hourly_kwh:")
    assert found[5][0].startswith("timezone:")
    assert found[6] == ["owners: no such user: mallory"]
    assert found[7] == ["row: 3 fields, expected 6"]
    assert found[8] == found[9] == ["serial: 'SN-8' is on rows 8, 9"]
    assert found[10][0].startswith("serial:") and found[11][0].startswith("serial:")
    assert found[12] == ["name: looks like a formula (starts with '@')", "address: looks like a formula (starts with '+')"]
    assert {r.serial for r in result.rejected if r.row in (2, 6)} == {"SN-2", "SN-6"}


def test_a_serial_is_unique_and_follows_its_device(devices: DeviceService, store: InMemoryDevices) -> None:
    created = devices.import_csv(csv("SN-1,Kitchen,,1,,")).created[0]
    other = devices.import_csv(csv("SN-2,Garage,,1,,")).created[0]
    with pytest.raises(errors.ConflictError):
        devices.update(other.device_id, UpdateDeviceRequest(serial="SN-1"))
    devices.update(created.device_id, UpdateDeviceRequest(serial="SN-9"))
    assert devices.import_csv(csv("SN-9,Kitchen,,1,,")).unchanged[0].device_id == created.device_id
    devices.delete(created.device_id)
    assert devices.import_csv(csv("SN-9,Kitchen,,1,,")).created[0].device_id != created.device_id


@pytest.mark.parametrize("body, message", [
    (b"\xff\xfe\x00bad", "The file is not UTF-8 text."),
    ("serial,name\ufffd".encode(), "The file is not UTF-8 text."),
    (b"serial,name\x00,x", "The file is not CSV text."),
    (b"", "The file is empty."),
    (b"id,name,address,max_hourly_kwh,timezone,owners\n1,a,,1,,\n", "The header must name the columns"),
    (b"serial,name,address,max_hourly_kwh,timezone,owners,serial\n", "The header must name the columns"),
    (b'serial,name,address,max_hourly_kwh,timezone,owners\n"SN-1,a\n', "The file is not CSV."),
])
def test_a_file_that_is_not_this_csv_is_refused_whole(devices: DeviceService, store: InMemoryDevices,
                                                      body: bytes, message: str) -> None:
    with pytest.raises(errors.ValidationError) as refused:
        devices.import_csv(body)
    assert refused.value.message.startswith(message) and refused.value.details
    assert store.devices == {}


def test_columns_in_another_order_a_bom_and_blank_lines_are_read(devices: DeviceService) -> None:
    body = "\ufeffOwners,Timezone,max_hourly_kwh,address,NAME,serial\r\n\r\nalice,UTC,1.5,,Kitchen,SN-1\r\n"
    assert [r.serial for r in devices.import_csv(body.encode()).created] == ["SN-1"]


def test_more_rows_than_a_request_takes_is_too_large(devices: DeviceService, store: InMemoryDevices) -> None:
    rows = [f"SN-{n},Meter {n},,1,," for n in range(importing.MAX_ROWS + 1)]
    with pytest.raises(errors.PayloadTooLargeError):
        devices.import_csv(csv(*rows))
    assert store.devices == {}
    assert len(devices.import_csv(csv(*rows[:-1])).created) == importing.MAX_ROWS


def test_cells_written_to_csv_cannot_run_as_formulas() -> None:
    import io

    from chalicelib.platform import csvcells

    out = io.StringIO()
    csvcells.writer(out).writerow(["=1+2", "+A1", "-cmd", "@SUM(A1)", "\tx", "-1.5", 2, None, "plain", "a=b"])
    assert out.getvalue() == "'=1+2,'+A1,'-cmd,'@SUM(A1),'\tx,-1.5,2,,plain,a=b\n"
