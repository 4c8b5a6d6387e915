"""Devices' sync events through real SNS and SQS under the local runtime (`ems`).

Given changes made over HTTP, the events the devices context publishes reach monitoring's
replica in the `meters` table, and identity's `user.deleted` reaches the devices context; a
message that can never be applied ends in its queue's dead-letter queue with a reason while
the rest of its batch is applied. Effects are asynchronous, so each is polled up to a deadline.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from tests.accounts import Account, new_client
from tests.harness import RuntimeProcess, wait_for

T = TypeVar("T")
TIMEOUT_S = 30
SETTLE_S = 20.0


def call(ems: RuntimeProcess, method: str, path: str, account: Account, json_body: Any = None) -> requests.Response:
    return requests.request(method, f"{ems.rest_url}{path}", json=json_body, headers=account.headers,
                            timeout=TIMEOUT_S)


def create_device(ems: RuntimeProcess, admin: Account, **fields: Any) -> dict[str, Any]:
    body = {"id": f"meter-{uuid.uuid4().hex[:12]}", "name": "Kitchen meter", "max_hourly_kwh": 2.5, **fields}
    response = call(ems, "POST", "/devices", admin, body)
    assert response.status_code == 201, response.text
    return response.json()


def replica(ems: RuntimeProcess, device_id: str) -> dict[str, Any] | None:
    """Monitoring's replica of a device, read straight from its table, as plain values."""
    item = ems.client("dynamodb").get_item(
        TableName=ems.name("meters"), Key={"device_id": {"S": device_id}}, ConsistentRead=True
    ).get("Item")
    if item is None:
        return None
    return {
        "name": item["name"]["S"],
        "max_hourly_kwh": float(item["max_hourly_kwh"]["N"]),
        "timezone": item["timezone"]["S"],
        "tariff_per_kwh": float(item["tariff_per_kwh"]["N"]) if "tariff_per_kwh" in item else None,
        "currency": item["currency"]["S"] if "currency" in item else None,
        "owner_ids": set(item.get("owner_ids", {}).get("SS", [])),
        "entity_version": int(item["entity_version"]["N"]),
        "deleted": item.get("deleted", {}).get("BOOL", False),
    }


def settles_to(read: Callable[[], T], expected: T, what: str, timeout_s: float = SETTLE_S) -> None:
    """`read()` comes to equal `expected` before the deadline (on failure, the last difference shows)."""
    try:
        wait_for(lambda: read() == expected, timeout_s=timeout_s, interval_s=0.2, what=what)
    except AssertionError:
        assert read() == expected, f"{what}: not reached in {timeout_s} s"


def expected_replica(device: dict[str, Any], version: int, deleted: bool = False) -> dict[str, Any]:
    return {
        "name": device["name"], "max_hourly_kwh": device["max_hourly_kwh"], "timezone": device["timezone"],
        "tariff_per_kwh": device["tariff_per_kwh"], "currency": device["currency"],
        "owner_ids": set(device["owner_ids"]), "entity_version": version, "deleted": deleted,
    }


# --- devices -> monitoring ----------------------------------------------------------------


def test_the_replica_reaches_a_devices_state_after_it_is_created_and_its_limit_changed(
    ems: RuntimeProcess, admin: Account
) -> None:
    alice, bob = new_client(ems, "alice"), new_client(ems, "bob")
    device = create_device(ems, admin, owner_ids=[alice.id, bob.id], timezone="Europe/Bucharest",
                           tariff_per_kwh=0.8, currency="RON")

    updated = call(ems, "PUT", f"/devices/{device['id']}", admin, {"max_hourly_kwh": 4.25})

    assert updated.status_code == 200, updated.text
    assert updated.json()["max_hourly_kwh"] == 4.25
    settles_to(lambda: replica(ems, device["id"]), expected_replica(updated.json(), version=2),
               "the replica at version 2")


def test_owners_added_and_removed_over_http_reach_the_replica(ems: RuntimeProcess, admin: Account) -> None:
    alice, bob = new_client(ems, "alice"), new_client(ems, "bob")
    device = create_device(ems, admin, owner_ids=[alice.id])

    added = call(ems, "PUT", f"/devices/{device['id']}/owners/{bob.id}", admin)
    removed = call(ems, "DELETE", f"/devices/{device['id']}/owners/{alice.id}", admin)
    again = call(ems, "DELETE", f"/devices/{device['id']}/owners/{alice.id}", admin)  # changes nothing

    assert (added.status_code, removed.status_code, again.status_code) == (200, 200, 200)
    settles_to(lambda: replica(ems, device["id"]), expected_replica(removed.json(), version=3),
               "the replica with bob as the only owner, at version 3")


def test_a_deleted_device_leaves_a_tombstone_in_the_replica(ems: RuntimeProcess, admin: Account) -> None:
    device = create_device(ems, admin)
    settles_to(lambda: replica(ems, device["id"]), expected_replica(device, version=1), "the created replica")

    assert call(ems, "DELETE", f"/devices/{device['id']}", admin).status_code == 204

    settles_to(lambda: replica(ems, device["id"]), expected_replica(device, version=2, deleted=True),
               "the replica marked deleted at version 2")


def test_a_device_created_again_with_a_deleted_devices_id_is_replicated(ems: RuntimeProcess, admin: Account) -> None:
    first = create_device(ems, admin, max_hourly_kwh=1.0)
    device_id = first["id"]
    assert call(ems, "DELETE", f"/devices/{device_id}", admin).status_code == 204
    settles_to(lambda: (replica(ems, device_id) or {}).get("deleted"), True, "the replica's tombstone")

    logged_before = len(ems.lines)
    again = call(ems, "POST", "/devices", admin, {"id": device_id, "name": "Replacement", "max_hourly_kwh": 3.0})
    assert again.status_code == 201, again.text

    def outcome() -> str | None:
        state = replica(ems, device_id)
        if state is not None and not state["deleted"]:
            return "replicated"
        since = ems.lines[logged_before:]
        ignored = any("older device event ignored" in line and device_id in line for line in since)
        return "ignored" if ignored else None

    result = wait_for(outcome, timeout_s=SETTLE_S, interval_s=0.2, what="the new device's event applied or ignored")
    assert result == "replicated"
    state = replica(ems, device_id)
    assert state is not None and (state["name"], state["max_hourly_kwh"]) == ("Replacement", 3.0)
    assert state["entity_version"] > 2  # the new life continues after the tombstone's version


# --- identity -> devices -> monitoring ----------------------------------------------------


def test_a_deleted_user_leaves_no_ownership_in_devices_or_in_the_replica(ems: RuntimeProcess, admin: Account) -> None:
    leaving, staying = new_client(ems, "leaving"), new_client(ems, "staying")
    shared = create_device(ems, admin, owner_ids=[leaving.id, staying.id])
    sole = create_device(ems, admin, owner_ids=[leaving.id])

    assert call(ems, "DELETE", f"/users/{leaving.id}", admin).status_code == 204

    def owners(device_id: str) -> list[str] | None:
        response = call(ems, "GET", f"/devices/{device_id}", admin)
        return response.json()["owner_ids"] if response.status_code == 200 else None

    settles_to(lambda: owners(shared["id"]), [staying.id], "the shared device without the deleted owner")
    settles_to(lambda: owners(sole["id"]), [], "the sole-owned device with no owner")
    of_user = call(ems, "GET", f"/users/{leaving.id}/devices", admin)
    assert of_user.status_code == 200 and of_user.json()["items"] == [], of_user.text
    settles_to(lambda: (replica(ems, shared["id"]) or {}).get("owner_ids"), {staying.id},
               "the replica's owners without the deleted user")
    settles_to(lambda: (replica(ems, sole["id"]) or {}).get("owner_ids"), set(),
               "the replica of the sole-owned device with no owner")


# --- messages that can never be applied ---------------------------------------------------


def device_event(kind: str, device_id: str, version: int = 1) -> str:
    return json.dumps({
        "type": kind, "event_id": str(uuid.uuid4()), "schema_version": 1, "entity_id": device_id,
        "entity_version": version, "occurred_at": "2024-05-01T10:00:00+00:00",
        "data": {"device": {
            "id": device_id, "name": "Hand-made meter", "description": "", "address": "", "max_hourly_kwh": 1.5,
            "timezone": "UTC", "tariff_per_kwh": None, "currency": None, "owner_ids": [],
            "created_at": "2024-05-01T10:00:00+00:00",
        }},
    })


def dead_letters(ems: RuntimeProcess, queue: str, marker: str, count: int) -> dict[str, dict[str, Any]]:
    """The `count` messages whose body holds `marker` in `queue`'s dead-letter queue, by body; removes them."""
    sqs = ems.client("sqs")
    url = ems.queue_url(f"{queue}-dlq")
    found: dict[str, dict[str, Any]] = {}

    def collect() -> bool:
        # Visibility 0: messages of other tests in this queue stay where they are, for them.
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                           MessageAttributeNames=["All"], WaitTimeSeconds=1).get("Messages", []):
            if marker in message["Body"]:
                found[message["Body"]] = message
        return len(found) >= count

    wait_for(collect, timeout_s=SETTLE_S, interval_s=0.2, what=f"{count} dead letters in {queue}-dlq")
    for message in found.values():
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def reason(message: dict[str, Any]) -> str:
    return str(message.get("MessageAttributes", {}).get("error_reason", {}).get("StringValue", ""))


def test_a_poison_message_is_dead_lettered_with_a_reason_while_its_batch_is_applied(ems: RuntimeProcess) -> None:
    marker = uuid.uuid4().hex
    malformed = f"not a device event {marker}"
    unknown = device_event("device.exploded", f"unknown-{marker}")
    valid_id = f"meter-{marker[:12]}"
    valid = device_event("device.created", valid_id)

    ems.client("sqs").send_message_batch(QueueUrl=ems.queue_url("monitoring-sync"), Entries=[
        {"Id": "malformed", "MessageBody": malformed},
        {"Id": "unknown", "MessageBody": unknown},
        {"Id": "valid", "MessageBody": valid},
    ])

    settles_to(lambda: (replica(ems, valid_id) or {}).get("entity_version"), 1, "the valid event applied")
    dead = dead_letters(ems, "monitoring-sync", marker, count=2)
    assert set(dead) == {malformed, unknown}
    assert "not a device event" in reason(dead[malformed])
    assert "unknown event type 'device.exploded'" in reason(dead[unknown])
    for message in dead.values():
        source = message["MessageAttributes"]["source_queue"]["StringValue"]
        assert source == ems.name("monitoring-sync")
    assert replica(ems, f"unknown-{marker}") is None


def test_a_message_that_is_not_an_identity_event_is_dead_lettered_by_the_devices_consumer(
    ems: RuntimeProcess,
) -> None:
    marker = uuid.uuid4().hex
    malformed = json.dumps({"type": "user.deleted", "note": marker})  # no entity_id or entity_version
    foreign = device_event("device.created", f"meter-{marker}")  # a device event on identity's queue

    ems.client("sqs").send_message_batch(QueueUrl=ems.queue_url("devices-sync"), Entries=[
        {"Id": "malformed", "MessageBody": malformed},
        {"Id": "foreign", "MessageBody": foreign},
    ])

    dead = dead_letters(ems, "devices-sync", marker, count=2)
    assert set(dead) == {malformed, foreign}
    assert "not an identity event" in reason(dead[malformed])
    assert "unknown event type 'device.created'" in reason(dead[foreign])
