"""Devices' tables; the only code that touches them.

A device's `version` orders every change to it, ownership changes included, so each event
it publishes carries a version that consumers compare. Ownership items live beside the
device, one per (device, user), with an index by user for "my devices".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib import errors, names
from chalicelib.devices.domain import ApiKey, Device
from chalicelib.platform import outbox, persistence
from chalicelib.platform.conditions import condition_failed
from chalicelib.platform.pagination import bad_cursor, by_name, decode_cursor, encode_cursor


class ByName(GlobalSecondaryIndex["DeviceItem"]):
    """Every device by name (sparse: a tombstone is not listed)."""

    class Meta:
        index_name = "by_name"
        projection = AllProjection()

    listing = UnicodeAttribute(hash_key=True)
    name_key = UnicodeAttribute(range_key=True)


LISTED = "all"


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
    listing = UnicodeAttribute(null=True)  # LISTED unless deleted
    name_key = UnicodeAttribute(null=True)  # the list's order: the name without case, then the id
    by_name = ByName()


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


def _item(device: Device, *, deleted: bool = False) -> DeviceItem:
    return DeviceItem(
        device.id, name=device.name, description=device.description, address=device.address,
        max_hourly_kwh=device.max_hourly_kwh, timezone=device.timezone, tariff_per_kwh=device.tariff_per_kwh,
        currency=device.currency, created_at=device.created_at, version=device.version, deleted=deleted,
        owner_ids=set(device.owner_ids) or None, listing=None if deleted else LISTED,
        name_key=None if deleted else by_name(device.name, device.id),
    )


def _device(item: DeviceItem) -> Device:
    return Device(
        id=item.id, name=item.name, description=item.description, address=item.address,
        max_hourly_kwh=float(item.max_hourly_kwh), timezone=item.timezone,
        tariff_per_kwh=None if item.tariff_per_kwh is None else float(item.tariff_per_kwh),
        currency=item.currency, created_at=item.created_at, owner_ids=frozenset(item.owner_ids or ()),
        version=int(item.version),
    )


def _key(item: ApiKeyItem) -> ApiKey:
    return ApiKey(item.key_id, item.device_id, item.secret_sha256, item.created_at)


def _stored(device_id: str) -> DeviceItem | None:
    try:
        return DeviceItem.get(device_id, consistent_read=True)
    except DoesNotExist:
        return None


@contextmanager
def _changing(conflict: str, field_error: errors.FieldError | None = None) -> Iterator[TransactWrite]:
    """A transaction whose failed condition is a ConflictError with this message."""
    try:
        with persistence.transaction() as tx:
            yield tx
    except TransactWriteError as exc:
        if condition_failed(exc):
            raise errors.ConflictError(conflict, [field_error] if field_error else []) from exc
        raise


class DynamoDevices:
    """The devices context's tables; the only code that touches them (see DeviceRepository)."""

    def get(self, device_id: str) -> Device | None:
        item = _stored(device_id)
        return None if item is None or item.deleted else _device(item)

    def next_version(self, device_id: str) -> int:
        tombstone = _stored(device_id)
        return 1 if tombstone is None else int(tombstone.version) + 1

    def device_ids_of(self, user_id: str) -> list[str]:
        return sorted(o.device_id for o in OwnerItem.by_user.query(user_id))

    def devices_of(self, user_id: str) -> list[Device]:
        ids = self.device_ids_of(user_id)
        found = {item.id: item for item in DeviceItem.batch_get(ids)} if ids else {}
        return [_device(found[i]) for i in ids if i in found and not found[i].deleted]

    def list_page(self, limit: int, cursor: str | None, prefix: str | None = None) -> tuple[list[Device], str | None]:
        start = decode_cursor(cursor, {"id", "listing", "name_key"})
        if start is not None and (start["listing"]["S"] != LISTED
                                  or not start["name_key"]["S"].startswith((prefix or "").lower())):
            raise bad_cursor()
        results = DeviceItem.by_name.query(LISTED, DeviceItem.name_key.startswith(prefix.lower()) if prefix else None,
                                           limit=limit, page_size=limit, last_evaluated_key=start)
        items = [_device(i) for i in results]
        return items, encode_cursor(results.last_evaluated_key)

    def create(self, device: Device, entries: Sequence[outbox.Entry]) -> None:
        """Over a tombstone, `device.version` continues from the deleted one's (see `next_version`)."""
        free: Condition = DeviceItem.id.does_not_exist()
        if device.version > 1:
            free = (DeviceItem.version == device.version - 1) & (DeviceItem.deleted == True)
        with _changing(f"A device with id '{device.id}' exists.", errors.FieldError("id", "already exists")) as tx:
            tx.save(_item(device), condition=free)
            for user_id in sorted(device.owner_ids):
                tx.save(OwnerItem(device.id, user_id))
            outbox.stage(tx, entries)

    def replace(self, old: Device, new: Device, entries: Sequence[outbox.Entry]) -> None:
        with _changing("The device changed meanwhile; reload and try again.") as tx:
            tx.save(_item(new), condition=DeviceItem.version == old.version)
            outbox.stage(tx, entries)

    def set_owner(self, device: Device, user_id: str, owned: bool, entries: Sequence[outbox.Entry]) -> Device:
        change = DeviceItem.owner_ids.add({user_id}) if owned else DeviceItem.owner_ids.delete({user_id})
        with _changing("The device changed meanwhile; try again.") as tx:
            tx.update(DeviceItem(device.id), actions=[DeviceItem.version.set(device.version + 1), change],
                      condition=DeviceItem.version == device.version)
            if owned:
                tx.save(OwnerItem(device.id, user_id))
            else:
                tx.delete(OwnerItem(device.id, user_id))
            outbox.stage(tx, entries)
        owners = device.owner_ids | {user_id} if owned else device.owner_ids - {user_id}
        return replace(device, version=device.version + 1, owner_ids=owners)

    def delete(self, device: Device, entries: Sequence[outbox.Entry]) -> None:
        """One transaction holds it all when it fits (DynamoDB takes 100 writes); the owners and keys
        beyond that are removed right after. A device is read as gone from the tombstone on, so such
        a leftover item grants nothing."""
        removals: list[Model] = [OwnerItem(device.id, o.user_id) for o in OwnerItem.query(device.id, consistent_read=True)]
        removals += ApiKeyItem.by_device.query(device.id)
        room = _TRANSACTION_ITEMS - 1 - len(entries)
        with _changing("The device changed meanwhile; reload and try again.") as tx:
            tx.save(_item(replace(device, version=device.version + 1), deleted=True),
                    condition=DeviceItem.version == device.version)
            for item in removals[:room]:
                tx.delete(item)
            outbox.stage(tx, entries)
        for model in (OwnerItem, ApiKeyItem):
            persistence.delete_all(model, (i for i in removals[room:] if isinstance(i, model)))

    def save_key(self, key: ApiKey) -> None:
        ApiKeyItem(key.key_id, device_id=key.device_id, secret_sha256=key.secret_sha256,
                   created_at=key.created_at).save(condition=ApiKeyItem.key_id.does_not_exist())

    def get_key(self, key_id: str) -> ApiKey | None:
        try:
            return _key(ApiKeyItem.get(key_id, consistent_read=True))
        except DoesNotExist:
            return None

    def keys_of(self, device_id: str) -> list[ApiKey]:
        return [_key(i) for i in ApiKeyItem.by_device.query(device_id)]

    def delete_key(self, key: ApiKey) -> None:
        ApiKeyItem(key.key_id).delete()


def backfill_listing() -> int:
    """List devices kept before the list was by name (a one-off step after an upgrade that reads
    every device; a listed one is left alone); how many were listed."""
    return persistence.bring_up(
        DeviceItem, DeviceItem.listing.does_not_exist() & (DeviceItem.deleted == False),
        lambda item: [DeviceItem.listing.set(LISTED), DeviceItem.name_key.set(by_name(item.name, item.id))],
        lambda item: DeviceItem.version == item.version)
