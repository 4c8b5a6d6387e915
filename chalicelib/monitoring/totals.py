"""The `hourly-totals` table: one item per device and UTC hour, written once per group of readings.

An item holds the exact total (a DynamoDB decimal), the count, the set of reading
timestamps already counted (`seen`) and the raw values (`vals`, as `timestamp=value`).
Adding readings is one UpdateItem whose condition is that none of their timestamps was
seen: a duplicate, a redelivery, a second consumer or a replay months later counts nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import aws
from chalicelib.monitoring.readings import Reading
from chalicelib.settings import get_settings


@dataclass
class WriteStats:
    """DynamoDB write requests made and write units billed (ReturnConsumedCapacity)."""

    requests: int = 0
    units: float = 0.0

    def add(self, response: dict[str, Any]) -> None:
        self.requests += 1
        self.units += float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 1.0))


@dataclass(frozen=True)
class Applied:
    """The hour's total before and after a successful add."""

    total_before: Decimal
    total_after: Decimal
    reading_count: int


@dataclass
class HourItem:
    device_id: str
    hour_start: str
    total_kwh: Decimal
    reading_count: int
    values: dict[str, Decimal] = field(default_factory=dict)


def _table() -> str:
    return get_settings().resource_name("hourly-totals")


def add(device_id: str, hour: str, readings: list[Reading], stats: WriteStats) -> Applied | None:
    """Count `readings` (all of one device and hour) at once; None if any was counted before."""
    amount = sum((r.kwh for r in readings), Decimal(0))
    keys = {f":t{i}": {"S": r.key} for i, r in enumerate(readings)}
    not_seen = " AND ".join(f"NOT contains(seen, :t{i})" for i in range(len(readings)))
    try:
        response = aws.client("dynamodb").update_item(
            TableName=_table(),
            Key={"device_id": {"S": device_id}, "hour_start": {"S": hour}},
            UpdateExpression="ADD total_kwh :amount, reading_count :n, seen :keys, vals :vals",
            ConditionExpression=f"attribute_not_exists(seen) OR ({not_seen})",
            ExpressionAttributeValues={
                ":amount": {"N": str(amount)},
                ":n": {"N": str(len(readings))},
                ":keys": {"SS": [r.key for r in readings]},
                ":vals": {"SS": [f"{r.key}={r.kwh}" for r in readings]},
                **keys,
            },
            ReturnValues="UPDATED_NEW",
            ReturnConsumedCapacity="TOTAL",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            stats.add(exc.response)
            return None
        raise
    stats.add(response)
    attributes = response["Attributes"]
    after = Decimal(attributes["total_kwh"]["N"])
    return Applied(after - amount, after, int(attributes["reading_count"]["N"]))


def get(device_id: str, hour: str) -> HourItem | None:
    item = aws.client("dynamodb").get_item(
        TableName=_table(),
        Key={"device_id": {"S": device_id}, "hour_start": {"S": hour}},
        ConsistentRead=True,
    ).get("Item")
    return _hour_item(item) if item else None


def get_many(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], HourItem]:
    """The stored hours among these (device, hour) keys, a hundred to a request.

    Eventually consistent: a caller that skips what it finds already counted still writes
    the rest with the conditional add, which settles any race.
    """
    wanted = [{"device_id": {"S": d}, "hour_start": {"S": h}} for d, h in dict.fromkeys(keys)]
    found: dict[tuple[str, str], HourItem] = {}
    for item in aws.batch_get_items(_table(), wanted,
                                    projection="device_id, hour_start, total_kwh, reading_count, vals"):
        hour = _hour_item(item)
        found[(hour.device_id, hour.hour_start)] = hour
    return found


def between(device_id: str, first_hour: str, last_hour: str, with_values: bool = False) -> list[HourItem]:
    """Every stored hour of a device from `first_hour` to `last_hour` inclusive, in order."""
    client = aws.client("dynamodb")
    projection = "device_id, hour_start, total_kwh, reading_count" + (", vals" if with_values else "")
    items: list[HourItem] = []
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "device_id = :d AND hour_start BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":d": {"S": device_id}, ":a": {"S": first_hour}, ":b": {"S": last_hour}},
        "ProjectionExpression": projection,
    }
    while True:
        page = client.query(**kwargs)
        items.extend(_hour_item(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def newest_first(device_id: str, first_hour: str, last_hour: str, page_size: int = 25) -> Iterator[HourItem]:
    """The device's stored hours from `last_hour` back to `first_hour`, values included, read a page at a time
    (stop iterating and nothing more is read)."""
    client = aws.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": _table(),
        "KeyConditionExpression": "device_id = :d AND hour_start BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":d": {"S": device_id}, ":a": {"S": first_hour}, ":b": {"S": last_hour}},
        "ProjectionExpression": "device_id, hour_start, total_kwh, reading_count, vals",
        "ScanIndexForward": False,
        "Limit": page_size,
    }
    while True:
        page = client.query(**kwargs)
        yield from (_hour_item(i) for i in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def latest(device_id: str) -> HourItem | None:
    """The device's most recent hour with readings (its values included)."""
    page = aws.client("dynamodb").query(
        TableName=_table(),
        KeyConditionExpression="device_id = :d",
        ExpressionAttributeValues={":d": {"S": device_id}},
        ScanIndexForward=False,
        Limit=1,
    )
    items = page.get("Items", [])
    return _hour_item(items[0]) if items else None


def delete_device(device_id: str) -> int:
    """Remove a deleted device's whole history; returns how many hours were removed."""
    return aws.delete_queried(_table(), ("device_id", "hour_start"), KeyConditionExpression="device_id = :d",
                              ExpressionAttributeValues={":d": {"S": device_id}},
                              ProjectionExpression="device_id, hour_start")


def _hour_item(item: dict[str, Any]) -> HourItem:
    values: dict[str, Decimal] = {}
    for entry in item.get("vals", {}).get("SS", []):
        key, _, value = entry.partition("=")
        values[key] = Decimal(value)
    return HourItem(
        device_id=item["device_id"]["S"],
        hour_start=item["hour_start"]["S"],
        total_kwh=Decimal(item.get("total_kwh", {}).get("N", "0")),
        reading_count=int(item.get("reading_count", {}).get("N", "0")),
        values=values,
    )
