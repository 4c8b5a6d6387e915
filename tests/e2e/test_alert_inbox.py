"""The alert inbox through the running app: paged by time however large, and emptied of a deleted device.

Given alerts raised by real readings, or a large admins' feed written into the inbox table as the
delivery writes it, `GET /alerts` is walked page by page over HTTP: unacknowledged alerts newest
first, then acknowledged ones newest first, none lost or repeated, each page a bounded read.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from tests.accounts import Account, api, assert_error, new_client
from tests.harness import RuntimeProcess, wait_for
from tests.sockets import DEADLINE_S, hour_key, hour_readings, make_device, send_readings

FEED = "#admins"


def walk(runtime: RuntimeProcess, account: Account, limit: int, query: str = "") -> list[dict[str, Any]]:
    """Every over-consumption alert of the listing, following the cursor page by page (the silent-meter
    check of the shared runtime may add alerts of its own to these old-dated meters)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = api(runtime, "GET", f"/alerts{query}", account, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(a for a in page["items"] if a["kind"] == "over_consumption")
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the listing never ended")


def feed_item(device_id: str, hour: dt.datetime) -> dict[str, Any]:
    """An alert in the admins' feed, as the delivery stores it."""
    created = (hour + dt.timedelta(minutes=59)).isoformat(timespec="seconds")
    alert = {"id": f"{device_id}:{hour_key(hour)}", "kind": "over_consumption", "device_id": device_id,
             "device_name": "Big feed", "hour_start": hour_key(hour), "total_kwh": 2.0, "max_hourly_kwh": 1.0,
             "created_at": created}
    return {"user_id": {"S": FEED}, "alert_id": {"S": alert["id"]}, "alert": {"S": json.dumps(alert)},
            "pushed": {"BOOL": True}, "at": {"S": f"{created}#{alert['id']}"}, "device_id": {"S": device_id}}


def test_an_admins_feed_of_1200_alerts_pages_by_time_and_keeps_every_acknowledgement(
    ems: RuntimeProcess, admin: Account
) -> None:
    # Given a device with 1,200 alerts in the admins' feed, one an hour
    device_id = make_device(ems, admin, [], limit=1.0)
    first_hour = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    hours = [first_hour + dt.timedelta(hours=n) for n in range(1200)]
    dynamodb = ems.client("dynamodb")
    items = [feed_item(device_id, h) for h in hours]
    for start in range(0, len(items), 25):
        request: dict[str, Any] = {ems.name("alert-inbox"): [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    newest_first = [f"{device_id}:{hour_key(h)}" for h in reversed(hours)]
    # When an admin acknowledges the oldest one (past the first thousand in any order)
    oldest = newest_first[-1]
    assert api(ems, "POST", f"/alerts/{oldest}/ack", admin).status_code == 200
    # Then walking the feed gives every alert once: the unacknowledged newest first, then the acknowledged
    listed = [a for a in walk(ems, admin, 200) if a["device_id"] == device_id]
    assert [a["id"] for a in listed] == newest_first[:-1] + [oldest]
    assert listed[-1]["acknowledged_at"] and all(a["acknowledged_at"] is None for a in listed[:-1])
    # And the first page holds the newest
    first_page = api(ems, "GET", "/alerts", admin, params={"limit": 5}).json()["items"]
    mine = [a["id"] for a in first_page if a["device_id"] == device_id]
    assert mine == newest_first[:len(mine)]
    # And the unacknowledged listing leaves the acknowledged one out
    unacknowledged = [a["id"] for a in walk(ems, admin, 500, "?unacknowledged=true") if a["device_id"] == device_id]
    assert unacknowledged == newest_first[:-1]


def test_an_owners_inbox_pages_unacknowledged_then_acknowledged_each_newest_first(
    ems: RuntimeProcess, admin: Account
) -> None:
    # Given an owner's device over its limit in five hours
    owner = new_client(ems, "owner")
    device_id = make_device(ems, admin, [owner], limit=1.0)
    hours = [dt.datetime(2026, 6, 20, h, tzinfo=dt.UTC) for h in (1, 3, 5, 7, 9)]
    for hour in hours:  # one at a time; alerts raised in the same second sort by id, so by hour
        send_readings(ems, hour_readings(device_id, hour, 0.5))
        alert_id = f"{device_id}:{hour_key(hour)}"
        wait_for(lambda a=alert_id: any(x["id"] == a for x in walk(ems, owner, 100)), timeout_s=DEADLINE_S,
                 what="the alert in the inbox")
    listed = walk(ems, owner, 2)
    ids = [a["id"] for a in listed]
    assert ids == [f"{device_id}:{hour_key(h)}" for h in reversed(hours)]
    # When the owner acknowledges the newest and the oldest
    for alert_id in (ids[0], ids[-1]):
        assert api(ems, "POST", f"/alerts/{alert_id}/ack", owner).status_code == 200
    # Then pages of two give the three others newest first, then the two acknowledged newest first
    after = walk(ems, owner, 2)
    assert [a["id"] for a in after] == [ids[1], ids[2], ids[3], ids[0], ids[4]]
    assert [a["acknowledged_at"] is not None for a in after] == [False, False, False, True, True]
    assert [a["id"] for a in walk(ems, owner, 2, "?unacknowledged=true")] == [ids[1], ids[2], ids[3]]


def test_a_cursor_from_another_users_listing_or_made_up_is_refused(ems: RuntimeProcess, admin: Account) -> None:
    owner, other = new_client(ems, "owner"), new_client(ems, "other")
    device_id = make_device(ems, admin, [owner], limit=1.0)
    for h in (1, 2):
        send_readings(ems, hour_readings(device_id, dt.datetime(2026, 6, 21, h, tzinfo=dt.UTC), 0.5))
    wait_for(lambda: len(walk(ems, owner, 10)) == 2, timeout_s=DEADLINE_S, what="two alerts")
    cursor = api(ems, "GET", "/alerts", owner, params={"limit": 1}).json()["next_cursor"]
    assert cursor
    assert_error(api(ems, "GET", "/alerts", other, params={"cursor": cursor}), 422, "validation_error", {"cursor"})
    for made_up in ("x.", "p.bm90IGpzb24", "a.e30", "p" * 40):
        assert_error(api(ems, "GET", "/alerts", owner, params={"cursor": made_up}), 422, "validation_error",
                     {"cursor"})


def test_deleting_a_device_removes_its_alerts_from_every_inbox_and_a_new_meter_with_its_id_starts_clean(
    ems: RuntimeProcess, admin: Account
) -> None:
    # Given a device whose alert reached its owner's inbox, the feed, and an admin's acknowledgement
    owner = new_client(ems, "owner")
    device_id = make_device(ems, admin, [owner], limit=1.0)
    send_readings(ems, hour_readings(device_id, dt.datetime(2026, 6, 22, 4, tzinfo=dt.UTC), 0.5))
    alert_id = f"{device_id}:2026-06-22T04:00:00Z"
    wait_for(lambda: [a for a in walk(ems, owner, 100) if a["id"] == alert_id], timeout_s=DEADLINE_S,
             what="the alert in the inbox")
    assert api(ems, "POST", f"/alerts/{alert_id}/ack", admin).status_code == 200
    dynamodb = ems.client("dynamodb")

    def copies() -> list[dict[str, Any]]:
        return dynamodb.query(TableName=ems.name("alert-inbox"), IndexName="by_device",  # type: ignore[no-any-return]
                              KeyConditionExpression="device_id = :d",
                              ExpressionAttributeValues={":d": {"S": device_id}})["Items"]

    assert {c["user_id"]["S"] for c in copies()} == {owner.id, FEED, admin.id}
    # When the device is deleted
    assert api(ems, "DELETE", f"/devices/{device_id}", admin).status_code == 204
    # Then every copy goes, and a new meter with the same id shows its new owner nothing of the old one
    wait_for(lambda: copies() == [], timeout_s=DEADLINE_S, what="the inbox copies removed")
    newcomer = new_client(ems, "newcomer")
    body = {"id": device_id, "name": "Again", "max_hourly_kwh": 1.0, "owner_ids": [newcomer.id]}
    assert api(ems, "POST", "/devices", admin, json=body).status_code == 201
    assert not [a for a in walk(ems, newcomer, 100) if a["device_id"] == device_id]
    assert not [a for a in walk(ems, owner, 100) if a["device_id"] == device_id]
