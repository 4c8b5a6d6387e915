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
from functools import reduce
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.constants import ALL_NEW, TOTAL
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.models import Model

from chalicelib import names
from chalicelib.monitoring.readings import Reading
from chalicelib.platform.persistence import DecimalAttribute, delete_all


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


class HourTotalItem(Model):
    class Meta:
        table_name = names.resource_name("hourly-totals")

    device_id = UnicodeAttribute(hash_key=True)
    hour_start = UnicodeAttribute(range_key=True)
    total_kwh = DecimalAttribute(null=True)
    reading_count = NumberAttribute(null=True)
    seen = UnicodeSetAttribute(null=True)  # the timestamps counted
    vals = UnicodeSetAttribute(null=True)  # `timestamp=value` of each reading counted


_SUMMARY = ["device_id", "hour_start", "total_kwh", "reading_count"]
_WITH_VALUES = [*_SUMMARY, "vals"]


def add(device_id: str, hour: str, readings: list[Reading], stats: WriteStats) -> Applied | None:
    """Count `readings` (all of one device and hour) at once; None if any was counted before."""
    amount = sum((r.kwh for r in readings), Decimal(0))
    item = HourTotalItem
    not_seen = reduce(lambda a, b: a & b, (~item.seen.contains(r.key) for r in readings))
    try:
        response = item._get_connection().update_item(
            device_id, hour,
            actions=[item.total_kwh.add(amount), item.reading_count.add(len(readings)),
                     item.seen.add({r.key for r in readings}), item.vals.add({f"{r.key}={r.kwh}" for r in readings})],
            condition=item.seen.does_not_exist() | not_seen,
            return_values=ALL_NEW, return_consumed_capacity=TOTAL,
        )
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            stats.add(getattr(exc.cause, "response", {}))
            return None
        raise
    stats.add(response)
    after = HourTotalItem.from_raw_data(response["Attributes"])
    return Applied(after.total_kwh - amount, after.total_kwh, int(after.reading_count))


def get(device_id: str, hour: str) -> HourItem | None:
    try:
        return _hour_item(HourTotalItem.get(device_id, hour, consistent_read=True))
    except DoesNotExist:
        return None


def get_many(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], HourItem]:
    """The stored hours among these (device, hour) keys, a hundred to a request.

    Eventually consistent: a caller that skips what it finds already counted still writes
    the rest with the conditional add, which settles any race.
    """
    found = (_hour_item(i) for i in HourTotalItem.batch_get(list(dict.fromkeys(keys)), attributes_to_get=_WITH_VALUES))
    return {(hour.device_id, hour.hour_start): hour for hour in found}


def between(device_id: str, first_hour: str, last_hour: str, with_values: bool = False) -> list[HourItem]:
    """Every stored hour of a device from `first_hour` to `last_hour` inclusive, in order."""
    return [_hour_item(i) for i in HourTotalItem.query(
        device_id, HourTotalItem.hour_start.between(first_hour, last_hour),
        attributes_to_get=_WITH_VALUES if with_values else _SUMMARY)]


def newest_first(device_id: str, first_hour: str, last_hour: str, page_size: int = 25) -> Iterator[HourItem]:
    """The device's stored hours from `last_hour` back to `first_hour`, values included, read a page at a time
    (stop iterating and nothing more is read)."""
    for item in HourTotalItem.query(device_id, HourTotalItem.hour_start.between(first_hour, last_hour),
                                    scan_index_forward=False, page_size=page_size, attributes_to_get=_WITH_VALUES):
        yield _hour_item(item)


def latest(device_id: str) -> HourItem | None:
    """The device's most recent hour with readings (its values included)."""
    newest = next(iter(HourTotalItem.query(device_id, scan_index_forward=False, limit=1)), None)
    return _hour_item(newest) if newest is not None else None


def delete_device(device_id: str) -> int:
    """Remove a deleted device's whole history; returns how many hours were removed."""
    return delete_all(HourTotalItem, HourTotalItem.query(device_id, attributes_to_get=["device_id", "hour_start"]))


def _hour_item(item: HourTotalItem) -> HourItem:
    values: dict[str, Decimal] = {}
    for entry in item.vals or ():
        key, _, value = entry.partition("=")
        values[key] = Decimal(value)
    return HourItem(device_id=item.device_id, hour_start=item.hour_start, total_kwh=item.total_kwh or Decimal(0),
                    reading_count=int(item.reading_count or 0), values=values)
