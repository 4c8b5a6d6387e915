"""The `hourly-totals` table: one item per device and UTC hour, written once per group of readings.

An item holds the exact total (a DynamoDB decimal), the count, the set of reading
timestamps already counted (`seen`) and the raw values (`vals`, as `timestamp=value`).
Adding readings is one UpdateItem whose condition is that none of their timestamps was
seen: a duplicate, a redelivery, a second consumer or a replay months later counts nothing.

A register device's hours hold its register values in `vals` and the energy computed from them
(chalicelib.monitoring.registers); they are rewritten whole, in one transaction that also moves the
device's `register_rev` on its replica item from the revision read before: two writers of one
device's registers can never both compute from the same state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from functools import reduce
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.constants import ALL_NEW, TOTAL
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib import aws, names
from chalicelib.monitoring.domain import Applied, HourTotal, RegisterHour, RegisterWindow, WriteStats, deadline_shard
from chalicelib.monitoring.readings import Reading
from chalicelib.monitoring.replica import MeterItem
from chalicelib.platform.pagination import bad_cursor, decode_cursor, encode_cursor
from chalicelib.platform.persistence import DecimalAttribute, Item, delete_all, one_page, transaction


class _SilentDue(GlobalSecondaryIndex["HourTotalItem"]):
    """Hours with a silence deadline, by shard and deadline (sparse; keys only)."""

    class Meta:
        index_name = "silent_due"
        projection = KeysOnlyProjection()

    silent_shard = UnicodeAttribute(hash_key=True)
    silent_at = UnicodeAttribute(range_key=True)


class HourTotalItem(Item):
    class Meta:
        table_name = names.resource_name("hourly-totals")

    device_id = UnicodeAttribute(hash_key=True)
    hour_start = UnicodeAttribute(range_key=True)
    total_kwh = DecimalAttribute(null=True)
    reading_count = NumberAttribute(null=True)
    seen = UnicodeSetAttribute(null=True)  # the timestamps counted
    vals = UnicodeSetAttribute(null=True)  # `timestamp=value` of each reading counted
    silent_shard = UnicodeAttribute(null=True)  # set with silent_at: the deadline index's partition
    silent_at = UnicodeAttribute(null=True)  # the silence deadline while this is its device's newest hour
    resets = NumberAttribute(null=True)  # a register device's hour: how many of its readings were resets
    silent_due = _SilentDue()


_SUMMARY = ["device_id", "hour_start", "total_kwh", "reading_count", "resets"]
_WITH_VALUES = [*_SUMMARY, "vals", "silent_at"]
_PARTIQL_BATCH = 25  # statements a BatchExecuteStatement takes
_FIRST_HOUR = "2000-01-01T00:00:00Z"  # readings are from 2000 on
_LAST_HOUR = "2100-01-01T00:00:00Z"


class DynamoHourTotals:
    """The HourTotals port on the `hourly-totals` table."""

    def add(self, device_id: str, hour: str, readings: list[Reading], stats: WriteStats,
            silent_at: str | None = None) -> Applied | None:
        amount = sum((r.kwh for r in readings), Decimal(0))
        item = HourTotalItem
        not_seen = reduce(lambda a, b: a & b, (~item.seen.contains(r.key) for r in readings))
        response = _update(device_id, hour, [
            item.total_kwh.add(amount), item.reading_count.add(len(readings)), item.seen.add({r.key for r in readings}),
            item.vals.add({f"{r.key}={r.kwh}" for r in readings}), *_deadline(device_id, silent_at),
        ], item.seen.does_not_exist() | not_seen, stats, return_values=ALL_NEW)
        if response is None:
            return None
        # Only the two numbers are read back: the hour's sets are not decoded on this hot path.
        after = response["Attributes"]
        total = Decimal(after["total_kwh"]["N"])
        return Applied(total - amount, total, int(after["reading_count"]["N"]))

    def set_deadline(self, device_id: str, hour: str, silent_at: str | None) -> None:
        # Setting needs the hour, clearing needs a deadline to clear: an absent hour stays absent.
        condition = HourTotalItem.hour_start.exists() if silent_at else HourTotalItem.silent_at.exists()
        _update(device_id, hour, _deadline(device_id, silent_at, clear=True), condition, WriteStats())

    def drop_deadlines(self, hours: list[tuple[str, str]], stats: WriteStats) -> None:
        # PartiQL's batch: 25 conditional updates to a request, where UpdateItem takes one each (no
        # other batch operation updates an item). A statement whose hour holds no deadline fails alone.
        statement = (f'UPDATE "{HourTotalItem.Meta.table_name}" REMOVE silent_at REMOVE silent_shard '
                     "WHERE device_id = ? AND hour_start = ? AND silent_at IS NOT MISSING")
        client = aws.client("dynamodb")
        for start in range(0, len(hours), _PARTIQL_BATCH):
            response = client.batch_execute_statement(ReturnConsumedCapacity="TOTAL", Statements=[
                {"Statement": statement, "Parameters": [{"S": device_id}, {"S": hour}]}
                for device_id, hour in hours[start:start + _PARTIQL_BATCH]])
            stats.requests += 1
            stats.units += sum(float(used.get("CapacityUnits", 0)) for used in response.get("ConsumedCapacity", []))
            failed = {answer["Error"]["Code"] for answer in response["Responses"] if "Error" in answer}
            if failed - {"ConditionalCheckFailed"}:
                raise RuntimeError(f"deadlines not dropped: {', '.join(sorted(failed))}")

    def due(self, shard: int, until: str, limit: int, cursor: str | None) -> tuple[list[tuple[str, str]], str | None]:
        start = decode_cursor(cursor, {"device_id", "hour_start", "silent_shard", "silent_at"})
        if start is not None and start["silent_shard"]["S"] != str(shard):
            raise bad_cursor()
        found, last = one_page(HourTotalItem, HourTotalItem.silent_due.query(
            str(shard), HourTotalItem.silent_at <= until, page_size=limit, last_evaluated_key=start))
        return [(i.device_id, i.hour_start) for i in found], encode_cursor(last)

    def get(self, device_id: str, hour: str) -> HourTotal | None:
        try:
            return _hour_item(HourTotalItem.get(device_id, hour, consistent_read=True))
        except DoesNotExist:
            return None

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], HourTotal]:
        """A hundred keys to a request. Eventually consistent: a caller that skips what it finds
        already counted still writes the rest with the conditional add, which settles any race."""
        found = HourTotalItem.batch_get(list(dict.fromkeys(keys)), attributes_to_get=_WITH_VALUES)
        return {(hour.device_id, hour.hour_start): hour for hour in map(_hour_item, found)}

    def between(self, device_id: str, first_hour: str, last_hour: str) -> list[HourTotal]:
        return [_hour_item(i) for i in HourTotalItem.query(
            device_id, HourTotalItem.hour_start.between(first_hour, last_hour), attributes_to_get=_SUMMARY)]

    def newest_first(self, device_id: str, first_hour: str, last_hour: str, page_size: int) -> Iterator[HourTotal]:
        for item in HourTotalItem.query(device_id, HourTotalItem.hour_start.between(first_hour, last_hour),
                                        scan_index_forward=False, page_size=page_size, attributes_to_get=_WITH_VALUES):
            yield _hour_item(item)

    def latest(self, device_id: str) -> HourTotal | None:
        newest = next(iter(HourTotalItem.query(device_id, scan_index_forward=False, limit=1, consistent_read=True)),
                      None)
        return _hour_item(newest) if newest is not None else None

    def delete_device(self, device_id: str) -> int:
        return delete_all(HourTotalItem, HourTotalItem.query(device_id, attributes_to_get=["device_id", "hour_start"]))

    def register_window(self, device_id: str, hour: str) -> RegisterWindow:
        # The revision first: if it is still the same at the write, these reads saw the state it names.
        try:
            revision = int(MeterItem.get(device_id, consistent_read=True,
                                         attributes_to_get=["device_id", "register_rev"]).register_rev or 0)
        except DoesNotExist:
            revision = 0
        upto = [_hour_item(i) for i in HourTotalItem.query(
            device_id, HourTotalItem.hour_start.between(_FIRST_HOUR, hour), scan_index_forward=False, limit=2,
            consistent_read=True, attributes_to_get=_WITH_VALUES)]
        current = upto[0] if upto and upto[0].hour_start == hour else None
        previous = next((h for h in upto if h.hour_start < hour), None)
        after = [_hour_item(i) for i in HourTotalItem.query(
            device_id, HourTotalItem.hour_start > hour, limit=1, consistent_read=True, attributes_to_get=_WITH_VALUES)]
        following = after[0] if after and after[0].hour_start <= _LAST_HOUR else None
        return RegisterWindow(revision, previous, current, following)

    def write_register(self, device_id: str, revision: int, hours: list[RegisterHour], stats: WriteStats,
                       handed_over: str | None = None) -> bool:
        item = HourTotalItem
        try:
            with transaction() as write:
                write.update(MeterItem(device_id), actions=[MeterItem.register_rev.set(revision + 1)],
                             condition=MeterItem.device_id.exists() & (
                                 (MeterItem.register_rev == revision) if revision
                                 else MeterItem.register_rev.does_not_exist()))
                for hour in hours:
                    resets = [item.resets.set(1)] if hour.reset else [item.resets.remove()]
                    write.update(HourTotalItem(device_id, hour.hour), actions=[
                        item.total_kwh.set(hour.total_kwh), item.reading_count.set(len(hour.values)),
                        item.seen.set(set(hour.values)),
                        item.vals.set({f"{key}={value}" for key, value in hour.values.items()}),
                        *resets, *_deadline(device_id, hour.silent_at)])
                if handed_over is not None:
                    write.update(HourTotalItem(device_id, handed_over), actions=_deadline(device_id, None, clear=True),
                                 condition=HourTotalItem.hour_start.exists())
        except TransactWriteError as exc:
            stats.requests += 1
            if exc.cause_response_code == "TransactionCanceledException":
                return False  # another writer moved the revision first (or a conflicting write was under way)
            raise
        stats.requests += 1
        stats.units += 2.0 * (1 + len(hours) + (handed_over is not None))  # a transactional write: two units an item
        return True


def _update(device_id: str, hour: str, actions: list[Action], condition: Condition, stats: WriteStats,
            **options: Any) -> dict[str, Any] | None:
    """One conditional UpdateItem of an hour, its capacity counted in `stats`; its response, or
    None when the condition did not hold."""
    try:
        response: dict[str, Any] = HourTotalItem._get_connection().update_item(
            device_id, hour, actions=actions, condition=condition, return_consumed_capacity=TOTAL, **options)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            stats.add(getattr(exc.cause, "response", {}))
            return None
        raise
    stats.add(response)
    return response


def _deadline(device_id: str, silent_at: str | None, clear: bool = False) -> list[Action]:
    """The update actions that set a deadline (and its shard), or remove it when `clear`."""
    if silent_at is not None:
        return [HourTotalItem.silent_at.set(silent_at), HourTotalItem.silent_shard.set(str(deadline_shard(device_id)))]
    return [HourTotalItem.silent_at.remove(), HourTotalItem.silent_shard.remove()] if clear else []


def _hour_item(item: HourTotalItem) -> HourTotal:
    values: dict[str, Decimal] = {}
    for entry in item.vals or ():
        key, _, value = entry.partition("=")
        values[key] = Decimal(value)
    return HourTotal(device_id=item.device_id, hour_start=item.hour_start, total_kwh=item.total_kwh or Decimal(0),
                     reading_count=int(item.reading_count or 0), values=values, silent_at=item.silent_at,
                     reset=bool(item.resets))
