"""Devices' use cases: administration, shared ownership, API keys, and the events other
contexts keep their replicas from.

Every event carries the device's whole state (owners included) and its version, so a
consumer needs no earlier event to apply a later one, and can drop an older one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace

from chalicelib import errors
from chalicelib.devices import importing
from chalicelib.devices.domain import ApiKey, Change, Device, DeviceRepository
from chalicelib.devices.importing import ImportRow
from chalicelib.devices.models import (
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyPage,
    CreateDeviceRequest,
    DeviceOut,
    DevicePage,
    ImportedRow,
    ImportResult,
    RejectedRow,
    RowProblem,
    UpdateDeviceRequest,
)
from chalicelib.errors import Principal
from chalicelib.observability import logger
from chalicelib.platform import outbox
from chalicelib.platform.publisher import Publisher, SnsPublisher
from chalicelib.settings import get_settings

TOPIC = "devices-events"


class DeviceService:
    """The devices context; `user_exists` asks identity directly (strongly consistent). The
    repository and the event outbox are ports (DynamoDB and SNS unless given). `has_reported` is
    monitoring's query of whether a device sent a reading yet (a device's reading kind is fixed from
    its first reading on: the hours it has were counted by that kind's rules)."""

    def __init__(self, user_exists: Callable[[str], bool], publisher: Publisher | None = None,
                 repository: DeviceRepository | None = None, events: outbox.EventDelivery | None = None,
                 user_ids: Callable[[Sequence[str]], dict[str, str]] | None = None,
                 has_reported: Callable[[str], bool] | None = None) -> None:
        from chalicelib.devices.repository import DynamoDevices

        self._user_exists = user_exists
        self._user_ids = user_ids
        self._has_reported = has_reported
        self._devices: DeviceRepository = repository or DynamoDevices()
        self._outbox: outbox.EventDelivery = events or outbox.Outbox(publisher or SnsPublisher())

    # --- reading ----------------------------------------------------------------------

    def get(self, principal: Principal, device_id: str) -> DeviceOut:
        """A device its caller may see: admins any, clients their own (others: 404)."""
        return out(self._visible(principal, device_id))

    def list_for(self, principal: Principal, limit: int, cursor: str | None, prefix: str | None = None) -> DevicePage:
        """Admins: a page of every device by name; clients: their own. `prefix`: names that start
        with it, without case."""
        if principal.is_admin:
            devices, next_cursor = self._devices.list_page(limit, cursor, prefix)
            return DevicePage(items=[out(d) for d in devices], next_cursor=next_cursor)
        own = self.of_user(principal, principal.user_id)
        if prefix:
            own.items = [d for d in own.items if d.name.lower().startswith(prefix.lower())]
        return own

    def of_user(self, principal: Principal, user_id: str) -> DevicePage:
        """The devices a user owns (admins: anyone's; clients: only their own)."""
        if not principal.is_admin and principal.user_id != user_id:
            raise errors.NotFoundError("No such user.")
        return DevicePage(items=[out(d) for d in self._devices.devices_of(user_id)], next_cursor=None)

    def of_user_devices(self, user_id: str) -> list[Device]:
        """A user's devices, for other contexts of the same user (no caller check)."""
        return self._devices.devices_of(user_id)

    def can_see(self, principal: Principal, device_id: str) -> bool:
        """Whether the caller may read this device's data (admins, owners)."""
        device = self._devices.get(device_id)
        return device is not None and (principal.is_admin or device.owned_by(principal.user_id))

    def require_visible(self, principal: Principal, device_id: str) -> None:
        """404 unless the caller may read this device's data."""
        if not self.can_see(principal, device_id):
            raise errors.NotFoundError("No such device.")

    # --- administration ---------------------------------------------------------------

    def create(self, request: CreateDeviceRequest) -> DeviceOut:
        owner_ids = sorted(set(request.owner_ids))
        self._require_users(owner_ids)
        device_id = request.id or str(uuid.uuid4())
        device = Device(
            device_id,
            serial=request.serial,
            name=request.name,
            description=request.description,
            address=request.address,
            max_hourly_kwh=request.max_hourly_kwh,
            timezone=request.timezone or get_settings().default_timezone,
            tariff_per_kwh=request.tariff_per_kwh,
            currency=request.currency,
            tariffs=tuple(request.tariffs),
            reading_kind=request.reading_kind,
            register_max_kwh=request.register_max_kwh,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            owner_ids=frozenset(owner_ids),
            version=self._devices.next_version(device_id),
        )
        _require_register_fields(device)
        entries = [_entry("device.created", device)]
        self._devices.create(device, entries)
        self._outbox.deliver(entries)
        logger.info("device created", extra={"device_id": device.id})
        return out(device)

    def update(self, device_id: str, request: UpdateDeviceRequest) -> DeviceOut:
        old = self._device(device_id)
        changes = request.model_dump(exclude_unset=True)
        if not changes:
            return out(old)
        for name, value in changes.items():
            if value is None and name in ("name", "max_hourly_kwh", "timezone", "reading_kind"):
                raise errors.ValidationError("This field cannot be emptied.",
                                             [errors.FieldError(name, "may not be null")])
        if changes.get("reading_kind", old.reading_kind) != old.reading_kind and self._has_reported is not None \
                and self._has_reported(device_id):
            raise errors.ConflictError(
                "This device has readings, counted as its reading kind says; its kind can no longer change. "
                "A meter that reports differently is a new device.")
        if "tariffs" in changes:  # the models, not their dumps; null empties the list
            changes["tariffs"] = tuple(request.tariffs or ())
        new = replace(old, **changes, version=old.version + 1)
        _require_register_fields(new)
        entries = [_entry("device.updated", new)]
        self._devices.replace(old, new, entries)
        self._outbox.deliver(entries)
        return out(new)

    def delete(self, device_id: str) -> None:
        device = self._device(device_id)
        entries = [_entry("device.deleted", replace(device, version=device.version + 1))]
        self._devices.delete(device, entries)
        self._outbox.deliver(entries)

    def import_csv(self, body: bytes) -> ImportResult:
        """Meters from a CSV file (see `importing`): a row whose serial is known updates that device
        (its owners become the row's), a new serial creates one, a row that matches its device
        writes nothing. A rejected row changes nothing; a request sent again creates nothing twice."""
        rows = importing.read(body)
        result = ImportResult(created=[], updated=[], unchanged=[], rejected=[
            _rejected(row.number, row.serial, row.reasons) for row in rows if row.values is None])
        pending = [row for row in rows if row.values is not None]
        owners = self._owner_ids(sorted({name for row in pending for name in _values(row).owners}))
        for attempt in range(2):  # a serial another request took meanwhile: read again, as an update
            pending = self._import(pending, owners, result, last=attempt == 1)
        result.rejected.sort(key=lambda rejected: rejected.row)
        logger.info("devices imported", extra={"rows_created": len(result.created), "rows_updated": len(result.updated),
                                                "rows_unchanged": len(result.unchanged), "rows_rejected": len(result.rejected)})
        return result

    def _import(self, rows: list[importing.Row], owners: dict[str, str], result: ImportResult,
                last: bool) -> list[importing.Row]:
        """Write these rows' changes; the rows to try again (a serial taken meanwhile)."""
        known = self._devices.by_serials([_values(row).serial for row in rows]) if rows else {}
        planned: list[tuple[importing.Row, Change]] = []
        for row in rows:
            values = _values(row)
            unknown = [name for name in values.owners if name not in owners]
            if unknown:
                result.rejected.append(_rejected(row.number, values.serial, [
                    errors.FieldError("owners", f"no such user: {name}") for name in unknown]))
                continue
            change = self._change(known.get(values.serial), values, frozenset(owners[n] for n in values.owners))
            if change is None:
                result.unchanged.append(ImportedRow(row=row.number, serial=values.serial,
                                                    device_id=known[values.serial].id))
            else:
                planned.append((row, change))
        again: list[importing.Row] = []
        delivered: list[outbox.Entry] = []
        for (row, change), conflict in zip(planned, self._devices.save_all([c for _, c in planned]), strict=True):
            imported = ImportedRow(row=row.number, serial=_values(row).serial, device_id=change.new.id)
            if conflict is None:
                (result.created if change.old is None else result.updated).append(imported)
                delivered.extend(change.entries)
            elif not last and change.old is None and any(d.field == "serial" for d in conflict.details):
                again.append(row)
            else:
                result.rejected.append(_rejected(row.number, imported.serial, conflict.details or [
                    errors.FieldError("row", conflict.message)]))
        self._outbox.deliver(delivered)
        return again

    def _change(self, old: Device | None, values: ImportRow, owner_ids: frozenset[str]) -> Change | None:
        if old is None:
            new = Device(str(uuid.uuid4()), serial=values.serial, name=values.name, address=values.address,
                         max_hourly_kwh=values.max_hourly_kwh,
                         timezone=values.timezone or get_settings().default_timezone,
                         created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), owner_ids=owner_ids)
            return Change(None, new, [_entry("device.created", new)])
        new = replace(old, name=values.name, address=values.address, max_hourly_kwh=values.max_hourly_kwh,
                      timezone=values.timezone or old.timezone, owner_ids=owner_ids)
        if new == old:
            return None
        new = replace(new, version=old.version + 1)
        return Change(old, new, [_entry("device.updated", new)])

    def _owner_ids(self, usernames: list[str]) -> dict[str, str]:
        if not usernames:
            return {}
        if self._user_ids is None:
            raise RuntimeError("this DeviceService was made without a way to find users by name")
        return self._user_ids(usernames)

    def add_owner(self, device_id: str, user_id: str) -> DeviceOut:
        """Idempotent: an existing owner changes nothing and publishes nothing."""
        device = self._device(device_id)
        if device.owned_by(user_id):
            return out(device)
        if not self._user_exists(user_id):
            raise errors.NotFoundError("No such user.", [errors.FieldError("user_id", "no such user")])
        return out(self._set_owner(device, user_id, owned=True))

    def remove_owner(self, device_id: str, user_id: str) -> DeviceOut:
        """Idempotent: removing a non-owner changes nothing and publishes nothing."""
        device = self._device(device_id)
        if not device.owned_by(user_id):
            return out(device)
        return out(self._set_owner(device, user_id, owned=False))

    def forget_user(self, user_id: str) -> int:
        """A user was deleted: remove each of their ownerships (each publishes its event)."""
        removed = 0
        for device_id in self._devices.device_ids_of(user_id):
            device = self._devices.get(device_id)
            if device is not None and device.owned_by(user_id):
                self._set_owner(device, user_id, owned=False)
                removed += 1
        return removed

    # --- API keys ---------------------------------------------------------------------

    def create_api_key(self, device_id: str) -> ApiKeyCreated:
        self._device(device_id)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        self._devices.save_key(ApiKey(key_id, device_id, _digest(secret),
                                      dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
        return ApiKeyCreated(key_id=key_id, api_key=f"{key_id}.{secret}")

    def list_api_keys(self, device_id: str) -> ApiKeyPage:
        self._device(device_id)
        return ApiKeyPage(items=[ApiKeyOut(key_id=k.key_id, device_id=k.device_id, created_at=k.created_at)
                                 for k in self._devices.keys_of(device_id)])

    def revoke_api_key(self, device_id: str, key_id: str) -> None:
        key = self._devices.get_key(key_id)
        if key is None or key.device_id != device_id:
            raise errors.NotFoundError("No such API key for this device.")
        self._devices.delete_key(key)

    def device_for_api_key(self, api_key: str) -> str:
        """The device an API key belongs to, or 401 (keys are random, so SHA-256 suffices)."""
        key_id, _, secret = api_key.partition(".")
        key = self._devices.get_key(key_id) if key_id and secret else None
        if key is None or not hmac.compare_digest(key.secret_sha256, _digest(secret)):
            raise errors.UnauthorizedError("The API key is not valid.")
        return key.device_id

    # --- internals --------------------------------------------------------------------

    def _set_owner(self, device: Device, user_id: str, owned: bool) -> Device:
        owners = device.owner_ids | {user_id} if owned else device.owner_ids - {user_id}
        after = replace(device, version=device.version + 1, owner_ids=owners)
        kind = "device.owner_added" if owned else "device.owner_removed"
        entries = [_entry(kind, after, user_id=user_id)]
        now = self._devices.set_owner(device, user_id, owned, entries)
        self._outbox.deliver(entries)
        return now

    def _require_users(self, user_ids: list[str]) -> None:
        missing = [u for u in user_ids if not self._user_exists(u)]
        if missing:
            raise errors.ValidationError(
                "Every owner must be an existing user.",
                [errors.FieldError("owner_ids", f"no such user: {u}") for u in missing],
            )

    def _device(self, device_id: str) -> Device:
        device = self._devices.get(device_id)
        if device is None:
            raise errors.NotFoundError("No such device.")
        return device

    def _visible(self, principal: Principal, device_id: str) -> Device:
        device = self._devices.get(device_id)
        if device is None or (not principal.is_admin and not device.owned_by(principal.user_id)):
            raise errors.NotFoundError("No such device.")
        return device


def _values(row: importing.Row) -> ImportRow:
    assert row.values is not None, "a rejected row has no values"
    return row.values


def _rejected(number: int, serial: str | None, problems: Sequence[errors.FieldError]) -> RejectedRow:
    return RejectedRow(row=number, serial=serial, problems=[RowProblem(field=p.field, message=p.message)
                                                            for p in problems])


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def out(device: Device) -> DeviceOut:
    """A device as the API shows it."""
    return DeviceOut(
        id=device.id, serial=device.serial, name=device.name, description=device.description, address=device.address,
        max_hourly_kwh=device.max_hourly_kwh, timezone=device.timezone, tariff_per_kwh=device.tariff_per_kwh,
        currency=device.currency, tariffs=list(device.tariffs), owner_ids=sorted(device.owner_ids),
        created_at=device.created_at, reading_kind="register" if device.reading_kind == "register" else "interval",
        register_max_kwh=device.register_max_kwh,
    )


def _require_register_fields(device: Device) -> None:
    """A register's maximum means something only for a register device."""
    if device.register_max_kwh is not None and device.reading_kind != "register":
        raise errors.ValidationError("register_max_kwh applies to register devices only.", [
            errors.FieldError("register_max_kwh", "set reading_kind to \"register\" or leave this out")])


def _entry(kind: str, device: Device, **extra: str) -> outbox.Entry:
    """The event of a change, with the device's whole state after it and its version."""
    state = out(device).model_dump(mode="json", by_alias=True)
    return outbox.entry(TOPIC, kind, device.id, device.version, {"device": state, **extra})
