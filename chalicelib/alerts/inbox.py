"""The `alert-inbox` table: an alert per owner (and one in the admins' feed), acknowledged per user.

Owners get their own copy (`user_id` = the owner). The admins share one feed (`user_id` =
`#admins`); an admin's acknowledgement is an item of its own (`user_id` = the admin, with
only `acknowledged_at`), so each admin acknowledges for themselves.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from chalicelib import aws
from chalicelib.settings import get_settings

ADMIN_FEED = "#admins"
MAX_LISTED = 500


class AlertOut(BaseModel):
    id: str
    kind: str
    device_id: str
    device_name: str
    hour_start: str
    total_kwh: float
    max_hourly_kwh: float
    created_at: str
    acknowledged_at: str | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class AlertsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=100, ge=1, le=MAX_LISTED)
    cursor: str | None = None
    unacknowledged: bool = False


def _table() -> str:
    return get_settings().resource_name("alert-inbox")


def store(user_id: str, alert: dict[str, Any]) -> bool:
    """Put the alert in one inbox unless it is there; True if this call put it."""
    try:
        aws.client("dynamodb").put_item(
            TableName=_table(),
            Item={"user_id": {"S": user_id}, "alert_id": {"S": alert["id"]}, "alert": {"S": json.dumps(alert)},
                  "pushed": {"BOOL": False}},
            ConditionExpression="attribute_not_exists(alert_id)",
        )
        return True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise


def unpushed(user_id: str, alert_id: str) -> bool:
    """Whether the alert is in this inbox but was not yet pushed to live sockets."""
    item = aws.client("dynamodb").get_item(
        TableName=_table(), Key={"user_id": {"S": user_id}, "alert_id": {"S": alert_id}},
        ProjectionExpression="pushed", ConsistentRead=True,
    ).get("Item")
    return item is not None and not item.get("pushed", {}).get("BOOL", True)


def mark_pushed(user_id: str, alert_id: str) -> None:
    aws.client("dynamodb").update_item(
        TableName=_table(), Key={"user_id": {"S": user_id}, "alert_id": {"S": alert_id}},
        UpdateExpression="SET pushed = :t", ExpressionAttributeValues={":t": {"BOOL": True}},
    )


def _query(user_id: str) -> list[dict[str, Any]]:
    client = aws.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": _table(), "KeyConditionExpression": "user_id = :u",
        "ExpressionAttributeValues": {":u": {"S": user_id}}, "ScanIndexForward": False,
    }
    while len(items) < MAX_LISTED * 2:
        page = client.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


def _out(item: dict[str, Any], acknowledged_at: str | None) -> AlertOut:
    alert = json.loads(item["alert"]["S"])
    alert["acknowledged_at"] = acknowledged_at
    return AlertOut.model_validate(alert)


def list_for(user_id: str, is_admin: bool) -> list[AlertOut]:
    """A user's alerts, unacknowledged first, newest first within each group."""
    own = _query(user_id)
    if is_admin:
        acks = {i["alert_id"]["S"]: i.get("acknowledged_at", {}).get("S") for i in own}
        alerts = [_out(i, acks.get(i["alert_id"]["S"])) for i in _query(ADMIN_FEED)]
    else:
        alerts = [_out(i, i.get("acknowledged_at", {}).get("S")) for i in own if "alert" in i]
    alerts.sort(key=lambda a: a.created_at + a.id, reverse=True)
    alerts.sort(key=lambda a: a.acknowledged_at is not None)
    return alerts[:MAX_LISTED]


def acknowledge(user_id: str, alert_id: str, is_admin: bool, now: dt.datetime) -> AlertOut | None:
    """Mark an alert acknowledged by this user (idempotent); None if it is not theirs."""
    client = aws.client("dynamodb")
    source = ADMIN_FEED if is_admin else user_id
    item = client.get_item(TableName=_table(), Key={"user_id": {"S": source}, "alert_id": {"S": alert_id}},
                           ConsistentRead=True).get("Item")
    if item is None:
        return None
    stamp = now.astimezone(dt.UTC).isoformat(timespec="seconds")
    result = client.update_item(
        TableName=_table(), Key={"user_id": {"S": user_id}, "alert_id": {"S": alert_id}},
        UpdateExpression="SET acknowledged_at = if_not_exists(acknowledged_at, :t)",
        ExpressionAttributeValues={":t": {"S": stamp}}, ReturnValues="ALL_NEW",
    )
    return _out(item, result["Attributes"]["acknowledged_at"]["S"])
