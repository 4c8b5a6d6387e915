"""Raised alerts (the `alerts` table): one per device and hour, stored once, announced at least once.

An alert is stored with a conditional put, so however many readings cross the limit, or
however often one is redelivered, the hour has one alert. `notified_at` is set once its
`alert.raised` message is on the notifications queue; until then any later delivery of a
reading of that hour sends it again (the alert id makes repeats harmless downstream).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from botocore.exceptions import ClientError

from chalicelib import aws
from chalicelib.messages import Alert, AlertRaised, DeviceDeleted
from chalicelib.platform import queues
from chalicelib.settings import get_settings


def over_consumption(device_id: str, device_name: str, hour: str, total: Decimal, limit: float,
                     now: dt.datetime) -> Alert:
    return Alert(
        id=f"{device_id}:{hour}", kind="over_consumption", device_id=device_id, device_name=device_name,
        hour_start=hour, total_kwh=round(float(total), 6), max_hourly_kwh=limit,
        created_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
    )


def _table() -> str:
    return get_settings().resource_name("alerts")


def store_once(alert: Alert) -> bool:
    """Store the alert unless one with its id exists; True if this call stored it."""
    item = {
        "id": {"S": alert.id}, "kind": {"S": alert.kind}, "device_id": {"S": alert.device_id},
        "device_name": {"S": alert.device_name}, "hour_start": {"S": alert.hour_start},
        "total_kwh": {"N": repr(alert.total_kwh)}, "max_hourly_kwh": {"N": repr(alert.max_hourly_kwh)},
        "created_at": {"S": alert.created_at},
    }
    try:
        aws.client("dynamodb").put_item(TableName=_table(), Item=item,
                                        ConditionExpression="attribute_not_exists(id)")
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise


def get(alert_id: str) -> tuple[Alert, bool] | None:
    """The stored alert and whether its message was sent."""
    item = aws.client("dynamodb").get_item(TableName=_table(), Key={"id": {"S": alert_id}},
                                           ConsistentRead=True).get("Item")
    if not item:
        return None
    alert = Alert(
        id=item["id"]["S"], kind=item["kind"]["S"], device_id=item["device_id"]["S"],
        device_name=item.get("device_name", {}).get("S", ""), hour_start=item["hour_start"]["S"],
        total_kwh=float(item["total_kwh"]["N"]), max_hourly_kwh=float(item["max_hourly_kwh"]["N"]),
        created_at=item["created_at"]["S"],
    )
    return alert, "notified_at" in item


def mark_notified(alert_id: str, now: dt.datetime) -> None:
    aws.client("dynamodb").update_item(
        TableName=_table(), Key={"id": {"S": alert_id}},
        UpdateExpression="SET notified_at = :t", ExpressionAttributeValues={":t": {"S": now.isoformat()}},
    )


def send(alert: Alert) -> None:
    """Put `alert.raised` on the notifications queue (at least once; the id dedupes)."""
    queues.send("notifications", AlertRaised(alert=alert))


def send_device_deleted(device_id: str, deleted_at: str) -> None:
    """Tell the inboxes that a device's alerts raised before `deleted_at` are gone (at least once)."""
    queues.send("notifications", DeviceDeleted(device_id=device_id, deleted_at=deleted_at))


def announce(alert: Alert, now: dt.datetime, *, fresh: bool = False) -> bool:
    """Store the alert once and make sure its message is sent (repairs an earlier failed send).

    `fresh`: the caller's own write just crossed the limit, so the alert is most likely new and is
    stored at once; otherwise (a repair on a repeated reading) it is read first, so that a repeat
    costs a read, not a refused write. True when this call sent the message.
    """
    stored = None if fresh else get(alert.id)
    if stored is None and not store_once(alert):
        stored = get(alert.id)  # stored by a concurrent consumer (or an earlier delivery) a moment ago
    if stored is not None:
        if stored[1]:
            return False
        alert = stored[0]
    send(alert)
    mark_notified(alert.id, now)
    return True


def delete_device(device_id: str) -> None:
    """Remove the stored alerts of a deleted device."""
    aws.delete_queried(_table(), ("id",), IndexName="by_device", KeyConditionExpression="device_id = :d",
                       ExpressionAttributeValues={":d": {"S": device_id}}, ProjectionExpression="id")
