"""Devices' tables; the only code that touches them.

A device's `version` orders every change to it, ownership changes included, so each event
it publishes carries a version that consumers compare. Ownership items live beside the
device, one per (device, user), with an index by user for "my devices".
"""

from __future__ import annotations

from collections.abc import Sequence

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib import errors, names
from chalicelib.devices.models import DeviceOut
from chalicelib.platform import outbox, persistence
from chalicelib.platform.pagination import decode_cursor, encode_cursor


class DeviceItem(Model):
    class Meta:
        table_name = names.resource_name("devices")

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    description = UnicodeAttribute(default="")
    address = UnicodeAttribute(default="")
    max_hourly_kwh = NumberAttribute()
    timezone = UnicodeAttribute()
    tariff_per_kwh = NumberAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    version = NumberAttribute(default=1)
    # A deleted device stays as a tombstone with its last version, so that a device created
    # again with the same id continues the version sequence its consumers compare against.
    deleted = BooleanAttribute(default=False)
    # The owners, kept on the device too (changed in the same transactions as the owner
    # items) so that reading a device or a list of them needs no query per device.
    owner_ids = UnicodeSetAttribute(null=True)


class ByUser(GlobalSecondaryIndex["OwnerItem"]):
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    device_id = UnicodeAttribute(range_key=True)


class OwnerItem(Model):
    class Meta:
        table_name = names.resource_name("device-owners")

    device_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute(range_key=True)
    by_user = ByUser()


class ByDevice(GlobalSecondaryIndex["ApiKeyItem"]):
    class Meta:
        index_name = "by_device"
        projection = AllProjection()

    device_id = UnicodeAttribute(hash_key=True)
    key_id = UnicodeAttribute(range_key=True)


class ApiKeyItem(Model):
    class Meta:
        table_name = names.resource_name("api-keys")

    key_id = UnicodeAttribute(hash_key=True)
    device_id = UnicodeAttribute()
    secret_sha256 = UnicodeAttribute()
    created_at = UnicodeAttribute()
    by_device = ByDevice()


_TRANSACTION_ITEMS = 100  # the most writes DynamoDB takes in one transaction


def _transaction() -> TransactWrite:
    return persistence.transaction()


def out(item: DeviceItem) -> DeviceOut:
    return DeviceOut(
        id=item.id, name=item.name, description=item.description, address=item.address,
        max_hourly_kwh=float(item.max_hourly_kwh), timezone=item.timezone,
        tariff_per_kwh=None if item.tariff_per_kwh is None else float(item.tariff_per_kwh),
        currency=item.currency, owner_ids=sorted(item.owner_ids or ()), created_at=item.created_at,
    )


def _stored(device_id: str) -> DeviceItem | None:
    try:
        return DeviceItem.get(device_id, consistent_read=True)
    except DoesNotExist:
        return None


def get(device_id: str) -> DeviceItem | None:
    item = _stored(device_id)
    return None if item is None or item.deleted else item


def owners(device_id: str) -> list[str]:
    return [o.user_id for o in OwnerItem.query(device_id, consistent_read=True)]


def owned_by(item: DeviceItem, user_id: str) -> bool:
    """Whether the user owns the device (its owner set changes in the owner items' transactions)."""
    return user_id in (item.owner_ids or ())


def devices_of(user_id: str) -> list[str]:
    return sorted(o.device_id for o in OwnerItem.by_user.query(user_id))


def batch_get(device_ids: list[str]) -> list[DeviceItem]:
    found = {item.id: item for item in DeviceItem.batch_get(device_ids)} if device_ids else {}
    return [found[i] for i in device_ids if i in found and not found[i].deleted]


def next_version(device_id: str) -> int:
    """The version a device created now with this id starts at: 1, or after its tombstone's."""
    tombstone = _stored(device_id)
    return 1 if tombstone is None else int(tombstone.version) + 1


def create(item: DeviceItem, entries: Sequence[outbox.Entry]) -> None:
    """Store a new device with its first owners and its events, or ConflictError if the id is taken.

    Over a tombstone, `item.version` continues from the deleted one's (see `next_version`).
    """
    free: Condition = DeviceItem.id.does_not_exist()
    if int(item.version) > 1:
        free = (DeviceItem.version == int(item.version) - 1) & (DeviceItem.deleted == True)
    try:
        with _transaction() as tx:
            tx.save(item, condition=free)
            for user_id in sorted(item.owner_ids or ()):
                tx.save(OwnerItem(item.id, user_id))
            outbox.stage(tx, entries)
    except TransactWriteError as exc:
        if _condition_failed(exc):
            raise errors.ConflictError(f"A device with id '{item.id}' exists.",
                                       [errors.FieldError("id", "already exists")]) from exc
        raise


def replace(old: DeviceItem, new: DeviceItem, entries: Sequence[outbox.Entry]) -> None:
    """Store `new` over `old`, with its events, unless the device changed meanwhile."""
    try:
        with _transaction() as tx:
            tx.save(new, condition=DeviceItem.version == old.version)
            outbox.stage(tx, entries)
    except TransactWriteError as exc:
        if _condition_failed(exc):
            raise errors.ConflictError("The device changed meanwhile; reload and try again.") from exc
        raise


def set_owner(device: DeviceItem, user_id: str, owned: bool, entries: Sequence[outbox.Entry]) -> None:
    """Add or remove one owner and bump the device's version, with its events, in one transaction.

    `device` is the device as it was read; on success it is the device as it is now.
    """
    change = DeviceItem.owner_ids.add({user_id}) if owned else DeviceItem.owner_ids.delete({user_id})
    try:
        with _transaction() as tx:
            tx.update(device, actions=[DeviceItem.version.set(device.version + 1), change],
                      condition=DeviceItem.version == device.version)
            if owned:
                tx.save(OwnerItem(device.id, user_id))
            else:
                tx.delete(OwnerItem(device.id, user_id))
            outbox.stage(tx, entries)
    except TransactWriteError as exc:
        if _condition_failed(exc):
            raise errors.ConflictError("The device changed meanwhile; try again.") from exc
        raise
    device.version = device.version + 1
    owners_now = set(device.owner_ids or ())
    device.owner_ids = (owners_now | {user_id} if owned else owners_now - {user_id}) or None


def delete(device: DeviceItem, entries: Sequence[outbox.Entry]) -> None:
    """Delete the device (a tombstone), its ownerships and its API keys, with its events.

    One transaction holds them all when they fit in one (DynamoDB takes 100 writes); the owners
    and keys beyond that are removed right after. A device is read as gone from the tombstone on,
    so such a leftover item grants nothing.
    """
    removals: list[Model] = [OwnerItem(device.id, user_id) for user_id in owners(device.id)]
    removals += ApiKeyItem.by_device.query(device.id)
    tombstone = DeviceItem(**device.attribute_values)
    tombstone.deleted = True
    tombstone.version = int(device.version) + 1
    room = _TRANSACTION_ITEMS - 1 - len(entries)
    try:
        with _transaction() as tx:
            tx.save(tombstone, condition=DeviceItem.version == device.version)
            for item in removals[:room]:
                tx.delete(item)
            outbox.stage(tx, entries)
    except TransactWriteError as exc:
        if _condition_failed(exc):
            raise errors.ConflictError("The device changed meanwhile; reload and try again.") from exc
        raise
    for model in (OwnerItem, ApiKeyItem):
        with model.batch_write() as batch:
            for item in removals[room:]:
                if isinstance(item, model):
                    batch.delete(item)


def list_page(limit: int, cursor: str | None) -> tuple[list[DeviceItem], str | None]:
    live = DeviceItem.deleted.does_not_exist() | (DeviceItem.deleted == False)
    results = DeviceItem.scan(filter_condition=live, limit=limit, page_size=limit,
                              last_evaluated_key=decode_cursor(cursor, {"id"}))
    items = list(results)
    last = results.last_evaluated_key
    return items, encode_cursor(last)


def save_key(item: ApiKeyItem) -> None:
    item.save(condition=ApiKeyItem.key_id.does_not_exist())


def get_key(key_id: str) -> ApiKeyItem | None:
    try:
        return ApiKeyItem.get(key_id, consistent_read=True)
    except DoesNotExist:
        return None


def keys_of(device_id: str) -> list[ApiKeyItem]:
    return list(ApiKeyItem.by_device.query(device_id))


def delete_key(item: ApiKeyItem) -> None:
    item.delete()


def _condition_failed(exc: TransactWriteError) -> bool:
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in (exc.cancellation_reasons or []))
