"""Monitoring's device replica, applied in-process against a faked DynamoDB.

Given device events built by hand in the shared envelope, the replica must end in the newest
state whatever the order or number of deliveries, never bring back a deleted device, and refuse
a message it can never apply with `InvalidMessage` (which sends it to the dead-letter queue).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import names
from chalicelib.messages import InvalidMessage
from chalicelib.monitoring import replica
from chalicelib.monitoring.domain import Meter
from chalicelib.monitoring.replica import MeterItem
from chalicelib.monitoring.totals import DynamoHourTotals
from tests.faked_stage import REGION, faked_stage


def apply(body: str) -> bool:
    """An event body as the monitoring-sync consumer applies it: parsed, then applied."""
    return replica.apply(replica.parse(body))


@pytest.fixture(scope="module")
def meters() -> Iterator[str]:
    """The stage's tables in a faked DynamoDB, for this module; yields the replica's table name.

    Tests share it and keep apart by using their own device ids.
    """
    with faked_stage() as stage:
        # pynamodb bound the name at import (stage `local` unless EMS_STAGE says otherwise).
        assert MeterItem.Meta.table_name == names.resource_name("meters", stage)
        # A deletion tells the inboxes on the notifications queue.
        boto3.client("sqs", region_name=REGION).create_queue(QueueName=names.resource_name("notifications", stage))
        yield MeterItem.Meta.table_name


def notifications() -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName=names.resource_name("notifications"))["QueueUrl"]
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def new_id() -> str:
    return f"meter-{uuid.uuid4().hex[:12]}"


def device(device_id: str, **changes: Any) -> dict[str, Any]:
    """A device as the devices context publishes it."""
    state: dict[str, Any] = {
        "id": device_id, "name": "Kitchen meter", "description": "", "address": "",
        "max_hourly_kwh": 2.5, "timezone": "Europe/Bucharest", "tariff_per_kwh": 0.8, "currency": "RON",
        "owner_ids": ["alice"], "created_at": "2024-05-01T10:00:00+00:00",
    }
    state.update(changes)
    return state


def envelope(kind: str, version: int, state: dict[str, Any], **extra: Any) -> str:
    """One sync event in the contract's envelope, as an SQS body."""
    return json.dumps({
        "type": kind,
        "event_id": str(uuid.uuid4()),
        "schema_version": 1,
        "entity_id": state.get("id", BAD_ID),
        "entity_version": version,
        "occurred_at": f"2024-05-01T10:00:{version:02d}+00:00",
        "data": {"device": state, **extra},
    })


def history(device_id: str) -> list[str]:
    """A device's life in version order: created, limit raised, owner added, time zone changed."""
    return [
        envelope("device.created", 1, device(device_id)),
        envelope("device.updated", 2, device(device_id, max_hourly_kwh=4.0)),
        envelope("device.owner_added", 3, device(device_id, max_hourly_kwh=4.0, owner_ids=["alice", "bob"]),
                 user_id="bob"),
        envelope("device.updated", 4, device(device_id, max_hourly_kwh=4.0, owner_ids=["alice", "bob"],
                                             timezone="America/New_York", tariff_per_kwh=None, currency=None)),
    ]


def final_meter(device_id: str) -> Meter:
    return Meter(device_id=device_id, name="Kitchen meter", max_hourly_kwh=4.0, timezone="America/New_York",
                 tariff_per_kwh=None, currency=None, owner_ids=frozenset({"alice", "bob"}), never_reported=True)


def test_events_applied_in_order_leave_the_newest_state(meters: str) -> None:
    device_id = new_id()

    for body in history(device_id):
        assert apply(body) is True

    assert replica.get(device_id) == final_meter(device_id)
    assert MeterItem.get(device_id, consistent_read=True).entity_version == 4


def test_every_event_delivered_twice_leaves_the_replica_correct(meters: str) -> None:
    device_id = new_id()
    events = history(device_id)

    first = [apply(body) for body in events]
    second = [apply(body) for body in events]

    assert first == [True, True, True, True]
    assert second == [False, False, False, False]  # every replay is recognised as old
    assert replica.get(device_id) == final_meter(device_id)


def test_each_event_replayed_at_once_changes_nothing(meters: str) -> None:
    device_id = new_id()

    for body in history(device_id):
        apply(body)
        before = replica.get(device_id)
        assert apply(body) is False
        assert replica.get(device_id) == before

    assert replica.get(device_id) == final_meter(device_id)


def test_events_in_reverse_order_end_in_the_same_state_as_in_order(meters: str) -> None:
    in_order, in_reverse = new_id(), new_id()
    for body in history(in_order):
        apply(body)

    applied = [apply(body) for body in reversed(history(in_reverse))]

    assert applied == [True, False, False, False]  # only the newest counts; the older ones are ignored
    assert replica.get(in_reverse) == final_meter(in_reverse)
    assert replica.get(in_order) == final_meter(in_order)


def test_a_late_older_update_after_a_deletion_does_not_bring_the_device_back(meters: str) -> None:
    device_id = new_id()
    apply(envelope("device.created", 1, device(device_id)))
    apply(envelope("device.updated", 2, device(device_id, max_hourly_kwh=3.0)))
    assert apply(envelope("device.deleted", 3, device(device_id, max_hourly_kwh=3.0))) is True
    assert replica.get(device_id) is None

    late_update = apply(envelope("device.updated", 2, device(device_id, max_hourly_kwh=9.0)))
    late_creation = apply(envelope("device.created", 1, device(device_id)))

    assert (late_update, late_creation) == (False, False)
    assert replica.get(device_id) is None
    tombstone = MeterItem.get(device_id, consistent_read=True)
    assert tombstone.deleted is True and tombstone.entity_version == 3


def test_a_deletion_arriving_before_the_creation_keeps_the_device_deleted(meters: str) -> None:
    device_id = new_id()
    apply(envelope("device.deleted", 2, device(device_id)))

    assert apply(envelope("device.created", 1, device(device_id))) is False
    assert replica.get(device_id) is None


def test_the_last_owner_removed_leaves_an_empty_owner_set(meters: str) -> None:
    device_id = new_id()
    apply(envelope("device.created", 1, device(device_id, owner_ids=["alice"])))

    apply(envelope("device.owner_removed", 2, device(device_id, owner_ids=[]), user_id="alice"))

    meter = replica.get(device_id)
    assert meter is not None and meter.owner_ids == frozenset()


def test_a_device_created_without_owners_is_replicated(meters: str) -> None:
    device_id = new_id()

    assert apply(envelope("device.created", 1, device(device_id, owner_ids=[]))) is True

    meter = replica.get(device_id)
    assert meter is not None and meter.owner_ids == frozenset() and meter.max_hourly_kwh == 2.5


# --- messages that can never be applied -----------------------------------------------------

BAD_ID = "never-stored"


def _event(**changes: Any) -> str:
    event = json.loads(envelope("device.updated", 1, device(BAD_ID)))
    event.update(changes)
    return json.dumps(event)


def _event_without(field: str) -> str:
    event = json.loads(envelope("device.updated", 1, device(BAD_ID)))
    del event[field]
    return json.dumps(event)


def _device_without(field: str) -> str:
    state = device(BAD_ID)
    del state[field]
    return envelope("device.updated", 1, {**state, "id": BAD_ID} if field != "id" else state)


def _device_with(**changes: Any) -> str:
    return envelope("device.updated", 1, device(BAD_ID, **changes))  # json.dumps writes NaN and Infinity


MALFORMED = {
    "not JSON": "{not json",
    "empty body": "",
    "JSON null": "null",
    "a JSON list": json.dumps([json.loads(envelope("device.created", 1, device(BAD_ID)))]),
    "a JSON string": json.dumps("device.created"),
    "unknown event type": _event(type="device.exploded"),
    "another context's event": _event(type="user.deleted"),
    "no type": _event_without("type"),
    "no event_id": _event_without("event_id"),
    "no entity_version": _event_without("entity_version"),
    "entity_version not a number": _event(entity_version="newest"),
    "schema_version 2": _event(schema_version=2),
    "data not an object": _event(data="device"),
    "no device in data": _event(data={}),
    "device not an object": _event(data={"device": "bad"}),
    "device without a limit": _device_without("max_hourly_kwh"),
    "device without owners": _device_without("owner_ids"),
    "device without an id": _device_without("id"),
    "entity_id of another device": _event(entity_id="another-device"),
    "limit not a number": _device_with(max_hourly_kwh="lots"),
    "limit NaN": _device_with(max_hourly_kwh=float("nan")),
    "limit infinite": _device_with(max_hourly_kwh=float("inf")),
    "limit zero": _device_with(max_hourly_kwh=0),
    "limit negative": _device_with(max_hourly_kwh=-1.5),
    "tariff NaN": _device_with(tariff_per_kwh=float("nan")),
    "tariff negative": _device_with(tariff_per_kwh=-0.1),
    "unknown time zone": _device_with(timezone="Mars/Olympus_Mons"),
}


@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_or_unknown_event_is_a_permanent_error_and_writes_nothing(meters: str, body: str) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    key = {"device_id": {"S": BAD_ID}}
    dynamodb.delete_item(TableName=meters, Key=key)  # whatever an earlier case may have left

    with pytest.raises(InvalidMessage):
        replica.apply(replica.parse(body))

    assert "Item" not in dynamodb.get_item(TableName=meters, Key=key, ConsistentRead=True)


def test_a_deletion_that_failed_half_way_finishes_clearing_the_history_when_redelivered(
        meters: str) -> None:
    # Given a device with an hour of history
    device_id = new_id()
    apply(envelope("device.created", 1, device(device_id)))
    hours = boto3.client("dynamodb", region_name=REGION)
    table = names.resource_name("hourly-totals")
    hours.put_item(TableName=table, Item={"device_id": {"S": device_id}, "hour_start": {"S": "2026-06-01T10:00:00Z"},
                                          "total_kwh": {"N": "1"}, "reading_count": {"N": "1"}})
    # When its deletion writes the tombstone and then fails to clear the history
    class Failing(DynamoHourTotals):
        def delete_device(self, device_id: str) -> int:
            raise RuntimeError("the endpoint went")

    deletion = envelope("device.deleted", 2, device(device_id))
    with pytest.raises(RuntimeError):
        replica.apply(replica.parse(deletion), hours=Failing())
    assert hours.query(TableName=table, KeyConditionExpression="device_id = :d",
                       ExpressionAttributeValues={":d": {"S": device_id}})["Items"]
    assert [m for m in notifications() if m.get("device_id") == device_id] == []
    # Then the redelivered event, finding its tombstone in place, clears the history
    assert apply(deletion) is True
    assert not hours.query(TableName=table, KeyConditionExpression="device_id = :d",
                           ExpressionAttributeValues={":d": {"S": device_id}})["Items"]
    assert replica.get(device_id) is None
    # And the inboxes are told to remove the device's alerts raised before the deletion
    told = [m for m in notifications() if m.get("device_id") == device_id]
    assert told == [{"type": "device.deleted", "schema_version": 1, "device_id": device_id, "deleted_at": json.loads(deletion)["occurred_at"]}]


def fleet_count() -> int:
    try:
        return int(MeterItem.get(replica.FLEET, consistent_read=True).devices or 0)
    except MeterItem.DoesNotExist:
        return 0


def test_a_batch_of_new_devices_is_written_at_once_with_the_fleet_count_moved_once(meters: str) -> None:
    ids = [new_id() for _ in range(10)]
    before = fleet_count()
    events = [replica.parse(envelope("device.created", 1, device(i))) for i in ids]

    assert replica.apply_batch(events) == [None] * 10
    assert [replica.get(i) for i in ids] == [Meter(device_id=i, name="Kitchen meter", max_hourly_kwh=2.5,
                                                   timezone="Europe/Bucharest", tariff_per_kwh=0.8, currency="RON",
                                                   owner_ids=frozenset({"alice"}), never_reported=True) for i in ids]
    assert fleet_count() == before + 10
    # Delivered again (a batch that came back): nothing changes, the count neither.
    assert replica.apply_batch(events) == [None] * 10
    assert fleet_count() == before + 10


def test_a_batch_with_a_bad_event_a_repeated_device_or_a_deletion_is_applied_event_by_event(meters: str) -> None:
    one, two = new_id(), new_id()
    before = fleet_count()
    batch = [
        replica.parse(envelope("device.created", 1, device(one))),
        replica.parse(envelope("device.created", 1, device(two))),
        replica.parse(envelope("device.updated", 2, device(one, max_hourly_kwh=9.0))),  # `one` again
        replica.parse(envelope("device.created", 1, {"id": "broken"})),
    ]
    outcome = replica.apply_batch(batch)

    assert outcome[:3] == [None, None, None] and isinstance(outcome[3], InvalidMessage)
    assert (replica.get(one) or final_meter(one)).max_hourly_kwh == 9.0 and replica.get(two) is not None
    assert fleet_count() == before + 2
    deleted = [replica.parse(envelope("device.deleted", 3, device(one))),
               replica.parse(envelope("device.created", 1, device(new_id())))]
    assert replica.apply_batch(deleted) == [None, None]
    assert replica.get(one) is None and fleet_count() == before + 2


def test_a_batch_whose_meter_changed_after_it_was_read_falls_back_to_one_event_at_a_time(
        meters: str, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [new_id() for _ in range(3)]
    apply(envelope("device.created", 1, device(ids[0])))
    newer = envelope("device.updated", 5, device(ids[0], name="Changed meanwhile"))
    real_plan = replica._plan

    def plan_then_change(state: Any, event: Any, current: Any) -> Any:
        planned = real_plan(state, event, current)
        if state.id == ids[0] and event.entity_version == 2:
            apply(newer)  # another consumer writes between the batch's read and its transaction
        return planned

    monkeypatch.setattr(replica, "_plan", plan_then_change)
    before = fleet_count()
    batch = [replica.parse(envelope("device.updated", 2, device(ids[0], name="Batch"))),
             replica.parse(envelope("device.created", 1, device(ids[1]))),
             replica.parse(envelope("device.created", 1, device(ids[2])))]
    assert replica.apply_batch(batch) == [None, None, None]

    assert (replica.get(ids[0]) or final_meter(ids[0])).name == "Changed meanwhile"  # the older event lost
    assert replica.get(ids[1]) is not None and replica.get(ids[2]) is not None
    assert fleet_count() == before + 2  # each new device counted once, not twice


def test_a_register_device_keeps_its_reading_kind_and_maximum_and_an_older_event_reads_as_interval(
        meters: str) -> None:
    # Given a device created by an event from before reading kinds, then made a register device
    device_id = new_id()
    apply(envelope("device.created", 1, device(device_id)))
    before = replica.get(device_id)
    apply(envelope("device.updated", 2, device(device_id, reading_kind="register", register_max_kwh=99999.0)))
    # Then the replica reads interval first, then register with its maximum
    assert before is not None and (before.reading_kind, before.register_max_kwh) == ("interval", None)
    after = replica.get(device_id)
    assert after is not None and (after.reading_kind, after.register_max_kwh) == ("register", 99999.0)
    # When it goes back to interval, then the maximum is gone too
    apply(envelope("device.updated", 3, device(device_id, reading_kind="interval")))
    back = replica.get(device_id)
    assert back is not None and (back.reading_kind, back.register_max_kwh) == ("interval", None)


def test_an_event_with_an_unknown_reading_kind_can_never_be_applied(meters: str) -> None:
    with pytest.raises(InvalidMessage):
        apply(envelope("device.created", 1, device(new_id(), reading_kind="cumulative")))
