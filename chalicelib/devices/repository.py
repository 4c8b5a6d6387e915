"""Devices' tables; the only code that touches them.

A device's `version` orders every change to it, ownership changes included, so each event
it publishes carries a version that consumers compare. Ownership items live beside the
device, one per (device, user), with an index by user for "my devices".
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace

from pydantic import TypeAdapter
from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib import errors, names
from chalicelib.devices.domain import ApiKey, Change, Device
from chalicelib.platform import outbox, persistence
from chalicelib.platform.pagination import bad_cursor, by_name, decode_cursor, encode_cursor
from chalicelib.platform.transactions import LabelledWrites, labelled
from chalicelib.tariffs import Tariff


class ByName(GlobalSecondaryIndex["DeviceItem"]):
    """Every device by name (sparse: a tombstone is not listed)."""

    class Meta:
        index_name = "by_name"
        projection = AllProjection()

    listing = UnicodeAttribute(hash_key=True)
    name_key = UnicodeAttribute(range_key=True)


LISTED = "all"


class DeviceItem(persistence.Item):
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
    serial = UnicodeAttribute(null=True)
    tariffs = UnicodeAttribute(null=True)  # JSON, as the API shows them; absent on devices kept before: none
    reading_kind = UnicodeAttribute(null=True)  # "register", or absent: "interval" (as every device kept before)
    register_max_kwh = NumberAttribute(null=True)
    by_name = ByName()


class SerialClaim(persistence.Item):
    """A serial number taken by one device: what makes serials unique (written with the device)."""

    class Meta:
        table_name = names.resource_name("device-serials")

    serial = UnicodeAttribute(hash_key=True)
    device_id = UnicodeAttribute()


class ByUser(GlobalSecondaryIndex["OwnerItem"]):
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    device_id = UnicodeAttribute(range_key=True)


class OwnerItem(persistence.Item):
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


class ApiKeyItem(persistence.Item):
    class Meta:
        table_name = names.resource_name("api-keys")

    key_id = UnicodeAttribute(hash_key=True)
    device_id = UnicodeAttribute()
    secret_sha256 = UnicodeAttribute()
    created_at = UnicodeAttribute()
    by_device = ByDevice()


_TARIFFS = TypeAdapter(list[Tariff])
_TRANSACTION_ITEMS = 100  # the most writes DynamoDB takes in one transaction


def _item(device: Device, *, deleted: bool = False) -> DeviceItem:
    return DeviceItem(
        device.id, name=device.name, description=device.description, address=device.address,
        max_hourly_kwh=device.max_hourly_kwh, timezone=device.timezone, tariff_per_kwh=device.tariff_per_kwh,
        currency=device.currency, created_at=device.created_at, version=device.version, deleted=deleted,
        owner_ids=set(device.owner_ids) or None, listing=None if deleted else LISTED,
        name_key=None if deleted else by_name(device.name, device.id), serial=device.serial,
        tariffs=_TARIFFS.dump_json(list(device.tariffs), by_alias=True).decode() if device.tariffs else None,
        reading_kind=None if device.reading_kind == "interval" else device.reading_kind,
        register_max_kwh=device.register_max_kwh,
    )


def _device(item: DeviceItem) -> Device:
    return Device(
        id=item.id, name=item.name, description=item.description, address=item.address,
        max_hourly_kwh=float(item.max_hourly_kwh), timezone=item.timezone,
        tariff_per_kwh=None if item.tariff_per_kwh is None else float(item.tariff_per_kwh),
        currency=item.currency, created_at=item.created_at, owner_ids=frozenset(item.owner_ids or ()),
        version=int(item.version), serial=item.serial,
        tariffs=tuple(_TARIFFS.validate_json(item.tariffs)) if item.tariffs else (),
        reading_kind=item.reading_kind or "interval",
        register_max_kwh=None if item.register_max_kwh is None else float(item.register_max_kwh),
    )


def _key(item: ApiKeyItem) -> ApiKey:
    return ApiKey(item.key_id, item.device_id, item.secret_sha256, item.created_at)


def _stored(device_id: str) -> DeviceItem | None:
    try:
        return DeviceItem.get(device_id, consistent_read=True)
    except DoesNotExist:
        return None


class _Label:
    """What a write of a device's transaction stands for (see LabelledWrites)."""

    FREE_ID = "free id"
    SERIAL = "serial"
    VERSION = "version"
    PLAIN = "plain"


def _conflict(failed: set[str], device: Device) -> errors.ConflictError:
    if _Label.SERIAL in failed:
        return errors.ConflictError(f"Another device has the serial '{device.serial}'.",
                                    [errors.FieldError("serial", "already taken")])
    if _Label.FREE_ID in failed:
        return errors.ConflictError(f"A device with id '{device.id}' exists.", [errors.FieldError("id", "already exists")])
    return errors.ConflictError("The device changed meanwhile; reload and try again.")


def _write(writes: LabelledWrites, change: Change) -> None:
    """The writes of one creation or replacement: the device (its version the condition), its
    serial's claim, the owners that came or went, its events."""
    old, new = change.old, change.new
    if old is None:
        free: Condition = DeviceItem.id.does_not_exist()
        if new.version > 1:
            free = (DeviceItem.version == new.version - 1) & (DeviceItem.deleted == True)
        writes.save(_item(new), _Label.FREE_ID, condition=free)
    else:
        writes.save(_item(new), _Label.VERSION, condition=DeviceItem.version == old.version)
    old_serial = old.serial if old else None
    if old_serial and old_serial != new.serial:
        writes.delete(SerialClaim(old_serial), _Label.VERSION, condition=SerialClaim.device_id == new.id)
    if new.serial and new.serial != old_serial:
        writes.save(SerialClaim(new.serial, device_id=new.id), _Label.SERIAL,
                    condition=SerialClaim.serial.does_not_exist())
    before = old.owner_ids if old else frozenset()
    for user_id in sorted(before - new.owner_ids):
        writes.delete(OwnerItem(new.id, user_id), _Label.PLAIN)
    for user_id in sorted(new.owner_ids - before):
        writes.save(OwnerItem(new.id, user_id), _Label.PLAIN)
    writes.stage(change.entries)


def _size(change: Change) -> int:
    """How many writes `_write` makes of a change (at most)."""
    old_owners = change.old.owner_ids if change.old else frozenset()
    return 3 + len(old_owners ^ change.new.owner_ids) + len(change.entries)


def _commit(changes: Sequence[Change]) -> None:
    """These changes in one transaction; a ConflictError names what failed (one change: which)."""
    with _transaction(changes[0].new) as writes:
        for change in changes:
            _write(writes, change)


def _transaction(device: Device) -> AbstractContextManager[LabelledWrites]:
    return labelled(lambda failed: _conflict(failed, device), _Label.PLAIN)


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

    def by_serials(self, serials: Sequence[str]) -> dict[str, Device]:
        claims = {claim.serial: claim.device_id for claim in SerialClaim.batch_get(sorted(set(serials)))}
        items = {item.id: item for item in DeviceItem.batch_get(sorted(set(claims.values())))} if claims else {}
        return {serial: _device(items[device_id]) for serial, device_id in claims.items()
                if device_id in items and not items[device_id].deleted and items[device_id].serial == serial}

    def create(self, device: Device, entries: Sequence[outbox.Entry]) -> None:
        """Over a tombstone, `device.version` continues from the deleted one's (see `next_version`)."""
        _commit([Change(None, device, entries)])

    def replace(self, old: Device, new: Device, entries: Sequence[outbox.Entry]) -> None:
        _commit([Change(old, new, entries)])

    def save_all(self, changes: Sequence[Change]) -> list[errors.ConflictError | None]:
        """Changes packed into transactions of up to 100 writes; a transaction a conflict refuses
        is tried again change by change, so that one conflict refuses only its own change."""
        outcome: list[errors.ConflictError | None] = [None] * len(changes)
        group: list[int] = []
        for index in [*range(len(changes)), None]:
            if group and (index is None or sum(_size(changes[i]) for i in group) + _size(changes[index])
                          > _TRANSACTION_ITEMS):
                try:
                    _commit([changes[i] for i in group])
                except errors.ConflictError:
                    for i in group:
                        try:
                            _commit([changes[i]])
                        except errors.ConflictError as conflict:
                            outcome[i] = conflict
                group = []
            if index is not None:
                group.append(index)
        return outcome

    def set_owner(self, device: Device, user_id: str, owned: bool, entries: Sequence[outbox.Entry]) -> Device:
        change = DeviceItem.owner_ids.add({user_id}) if owned else DeviceItem.owner_ids.delete({user_id})
        with _transaction(device) as writes:
            writes.update(DeviceItem(device.id), _Label.VERSION, actions=[DeviceItem.version.set(device.version + 1),
                                                                           change],
                          condition=DeviceItem.version == device.version)
            if owned:
                writes.save(OwnerItem(device.id, user_id), _Label.PLAIN)
            else:
                writes.delete(OwnerItem(device.id, user_id), _Label.PLAIN)
            writes.stage(entries)
        owners = device.owner_ids | {user_id} if owned else device.owner_ids - {user_id}
        return replace(device, version=device.version + 1, owner_ids=owners)

    def delete(self, device: Device, entries: Sequence[outbox.Entry]) -> None:
        """One transaction holds it all when it fits (DynamoDB takes 100 writes); the owners and keys
        beyond that are removed right after. A device is read as gone from the tombstone on, so such
        a leftover item grants nothing."""
        removals: list[persistence.Item] = [OwnerItem(device.id, o.user_id) for o in OwnerItem.query(device.id, consistent_read=True)]
        removals += ApiKeyItem.by_device.query(device.id)
        if device.serial:
            removals.insert(0, SerialClaim(device.serial))
        room = _TRANSACTION_ITEMS - 1 - len(entries)
        with _transaction(device) as writes:
            writes.save(_item(replace(device, version=device.version + 1), deleted=True), _Label.VERSION,
                        condition=DeviceItem.version == device.version)
            for item in removals[:room]:
                writes.delete(item, _Label.PLAIN)
            writes.stage(entries)
        for model in (SerialClaim, OwnerItem, ApiKeyItem):
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
