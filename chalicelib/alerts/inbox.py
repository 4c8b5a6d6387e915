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

from chalicelib import aws, errors
from chalicelib.messages import Alert
from chalicelib.platform.pagination import decode_cursor, encode_cursor
from chalicelib.settings import get_settings

ADMIN_FEED = "#admins"
MAX_LISTED = 500  # the largest page


class AlertOut(Alert):
    """An alert as one user sees it: acknowledged by them or not."""

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


# Indexes of the inbox (see infra/template.yaml): every copy by time; owners' unacknowledged
# copies by time (sparse: `pending_at` is removed by the acknowledgement); every copy by device.
BY_TIME = "by_time"
PENDING = "pending"
BY_DEVICE = "by_device"
PAGE_READS = 5  # index pages one listing reads at most; a longer walk goes on with the cursor


def _at(alert: Alert) -> str:
    """The copy's place in time: creation time, then id (unique, and sorts newest last)."""
    return f"{alert.created_at}#{alert.id}"


def store(user_id: str, alert: Alert) -> bool:
    """Put the alert in one inbox unless it is there; True if this call put it."""
    at = _at(alert)
    item = {"user_id": {"S": user_id}, "alert_id": {"S": alert.id}, "alert": {"S": alert.model_dump_json()},
            "pushed": {"BOOL": False}, "at": {"S": at}, "device_id": {"S": alert.device_id}}
    if user_id != ADMIN_FEED:  # the feed is acknowledged per admin, in each admin's own items
        item["pending_at"] = {"S": at}
    try:
        aws.client("dynamodb").put_item(TableName=_table(), Item=item,
                                        ConditionExpression="attribute_not_exists(alert_id)")
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


def _out(item: dict[str, Any], acknowledged_at: str | None) -> AlertOut:
    return AlertOut.model_validate({**json.loads(item["alert"]["S"]), "acknowledged_at": acknowledged_at})


Key = dict[str, Any]


def _query(user_id: str, index: str, limit: int, start: Key | None, **extra: Any) -> tuple[list[Key], Key | None]:
    kwargs: dict[str, Any] = {
        "TableName": _table(), "IndexName": index, "KeyConditionExpression": "user_id = :u",
        "ExpressionAttributeValues": {":u": {"S": user_id}}, "ScanIndexForward": False, "Limit": limit, **extra,
    }
    if start:
        kwargs["ExclusiveStartKey"] = start
    page = aws.client("dynamodb").query(**kwargs)
    return page.get("Items", []), page.get("LastEvaluatedKey")


def _pending(user_id: str, is_admin: bool, limit: int, start: Key | None) -> tuple[list[AlertOut], Key | None]:
    """A page of the user's unacknowledged alerts, newest first."""
    if not is_admin:
        items, last = _query(user_id, PENDING, limit, start)
        return [_out(i, None) for i in items], last
    # An admin's: the feed's alerts without an acknowledgement item of theirs.
    items, last = _query(ADMIN_FEED, BY_TIME, limit, start)
    acked = _acknowledged_ids(user_id, [i["alert_id"]["S"] for i in items])
    return [_out(i, None) for i in items if i["alert_id"]["S"] not in acked], last


def _acknowledged_ids(user_id: str, alert_ids: list[str]) -> set[str]:
    """Which of these alerts the user acknowledged."""
    keys = [{"user_id": {"S": user_id}, "alert_id": {"S": a}} for a in alert_ids]
    found = aws.batch_get_items(_table(), keys, consistent=True, projection="alert_id, acknowledged_at")
    return {i["alert_id"]["S"] for i in found if "acknowledged_at" in i}


def _acknowledged(user_id: str, limit: int, start: Key | None) -> tuple[list[AlertOut], Key | None]:
    """A page of the alerts the user acknowledged, newest first (an admin's hold a copy of the alert)."""
    items, last = _query(user_id, BY_TIME, limit, start,
                         FilterExpression="attribute_exists(acknowledged_at) AND attribute_exists(alert)")
    return [_out(i, i["acknowledged_at"]["S"]) for i in items], last


def list_page(user_id: str, is_admin: bool, limit: int, cursor: str | None,
              unacknowledged: bool) -> tuple[list[AlertOut], str | None]:
    """Up to `limit` of a user's alerts: the unacknowledged ones newest first, then (unless
    `unacknowledged`) the acknowledged ones newest first; and the cursor of the rest. Each call
    reads at most PAGE_READS index pages, however large the inbox; a page may then hold fewer than
    `limit` alerts, with a cursor to go on."""
    phase, start = _decode(cursor, user_id, is_admin)
    out: list[AlertOut] = []
    for _ in range(PAGE_READS):
        if len(out) >= limit:
            break
        if phase == "pending":
            found, start = _pending(user_id, is_admin, limit - len(out), start)
        else:
            found, start = _acknowledged(user_id, limit - len(out), start)
        out.extend(found)
        if start is None:
            if phase == "acknowledged" or unacknowledged:
                return out, None
            phase = "acknowledged"
    return out, _encode(phase, start)


_PHASES = {"p": "pending", "a": "acknowledged"}


def _encode(phase: str, start: Key | None) -> str:
    """`<phase letter>.<where to go on>`."""
    return f"{phase[0]}.{encode_cursor(start) or ''}"


def _decode(cursor: str | None, user_id: str, is_admin: bool) -> tuple[str, Key | None]:
    """A cursor from this user's own listing: (phase, where to go on); 422 for any other."""
    if not cursor:
        return "pending", None
    letter, _, rest = cursor.partition(".")
    phase = _PHASES.get(letter)
    if phase is None:
        raise _bad_cursor()
    # The index a phase reads, and so the key a cursor of it holds.
    sort_key = "pending_at" if phase == "pending" and not is_admin else "at"
    start = decode_cursor(rest, {"user_id", "alert_id", sort_key}) if rest else None
    partition = ADMIN_FEED if phase == "pending" and is_admin else user_id
    if start is not None and start["user_id"]["S"] != partition:
        raise _bad_cursor()
    return phase, start


def _bad_cursor() -> errors.ValidationError:
    return errors.ValidationError("The cursor is not valid.", [errors.FieldError("cursor", "not a cursor from this list")])


def acknowledge(user_id: str, alert_id: str, is_admin: bool, now: dt.datetime) -> AlertOut | None:
    """Mark an alert acknowledged by this user (idempotent); None if it is not theirs.

    An admin's acknowledgement of a feed alert is an item of their own that holds a copy of it, so
    their acknowledged alerts list from their own items."""
    client = aws.client("dynamodb")
    source = ADMIN_FEED if is_admin else user_id
    item = client.get_item(TableName=_table(), Key={"user_id": {"S": source}, "alert_id": {"S": alert_id}},
                           ConsistentRead=True).get("Item")
    if item is None:
        return None
    alert = Alert.model_validate_json(item["alert"]["S"])
    stamp = now.astimezone(dt.UTC).isoformat(timespec="seconds")
    result = client.update_item(
        TableName=_table(), Key={"user_id": {"S": user_id}, "alert_id": {"S": alert_id}},
        UpdateExpression="SET acknowledged_at = if_not_exists(acknowledged_at, :t), #alert = if_not_exists(#alert, :a),"
                         " #at = if_not_exists(#at, :at), device_id = if_not_exists(device_id, :d) REMOVE pending_at",
        ExpressionAttributeNames={"#alert": "alert", "#at": "at"},
        ExpressionAttributeValues={":t": {"S": stamp}, ":a": item["alert"], ":at": {"S": _at(alert)},
                                   ":d": {"S": alert.device_id}},
        ReturnValues="ALL_NEW",
    )
    return _out(item, result["Attributes"]["acknowledged_at"]["S"])


def delete_device(device_id: str, before: str) -> int:
    """Remove every copy of a deleted device's alerts raised before `before` (an ISO time): owners'
    copies, the feed's and admins' acknowledgements. The number removed."""
    return aws.delete_queried(_table(), ("user_id", "alert_id"), IndexName=BY_DEVICE,
                              KeyConditionExpression="device_id = :d AND #at < :b", ExpressionAttributeNames={"#at": "at"},
                              ExpressionAttributeValues={":d": {"S": device_id}, ":b": {"S": before}})
