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
from collections.abc import Callable

from chalicelib import errors
from chalicelib.devices import repository
from chalicelib.devices.models import (
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyPage,
    CreateDeviceRequest,
    DeviceOut,
    DevicePage,
    UpdateDeviceRequest,
)
from chalicelib.devices.repository import ApiKeyItem, DeviceItem
from chalicelib.errors import Principal
from chalicelib.observability import logger
from chalicelib.platform import outbox
from chalicelib.platform.publisher import Event, Publisher, SnsPublisher
from chalicelib.settings import get_settings

TOPIC = "devices-events"


class DeviceService:
    """The devices context; `user_exists` asks identity directly (strongly consistent)."""

    def __init__(self, user_exists: Callable[[str], bool], publisher: Publisher | None = None) -> None:
        self._user_exists = user_exists
        self._outbox = outbox.Outbox(publisher or SnsPublisher())

    # --- reading ----------------------------------------------------------------------

    def get(self, principal: Principal, device_id: str) -> DeviceOut:
        """A device its caller may see: admins any, clients their own (others: 404)."""
        item = self._visible(principal, device_id)
        return repository.out(item)

    def list_for(self, principal: Principal, limit: int, cursor: str | None) -> DevicePage:
        if principal.is_admin:
            items, next_cursor = repository.list_page(limit, cursor)
            return DevicePage(items=[repository.out(i) for i in items],
                              next_cursor=next_cursor)
        return self.of_user(principal, principal.user_id)

    def of_user(self, principal: Principal, user_id: str) -> DevicePage:
        """The devices a user owns (admins: anyone's; clients: only their own)."""
        if not principal.is_admin and principal.user_id != user_id:
            raise errors.NotFoundError("No such user.")
        items = repository.batch_get(repository.devices_of(user_id))
        return DevicePage(items=[repository.out(i) for i in items], next_cursor=None)

    def of_user_devices(self, user_id: str) -> list[DeviceOut]:
        """A user's devices, for other contexts of the same user (no caller check)."""
        items = repository.batch_get(repository.devices_of(user_id))
        return [repository.out(i) for i in items]

    def can_see(self, principal: Principal, device_id: str) -> bool:
        """Whether the caller may read this device's data (admins, owners)."""
        item = repository.get(device_id)
        return item is not None and (principal.is_admin or repository.owned_by(item, principal.user_id))

    def require_visible(self, principal: Principal, device_id: str) -> None:
        """404 unless the caller may read this device's data."""
        if not self.can_see(principal, device_id):
            raise errors.NotFoundError("No such device.")

    # --- administration ---------------------------------------------------------------

    def create(self, request: CreateDeviceRequest) -> DeviceOut:
        owner_ids = sorted(set(request.owner_ids))
        self._require_users(owner_ids)
        item = DeviceItem(
            request.id or str(uuid.uuid4()),
            name=request.name,
            description=request.description,
            address=request.address,
            max_hourly_kwh=request.max_hourly_kwh,
            timezone=request.timezone or get_settings().default_timezone,
            tariff_per_kwh=request.tariff_per_kwh,
            currency=request.currency,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            owner_ids=set(owner_ids) or None,
        )
        item.version = repository.next_version(item.id)
        device = repository.out(item)
        entries = [_entry("device.created", device, int(item.version))]
        repository.create(item, entries)
        self._outbox.deliver(entries)
        logger.info("device created", extra={"device_id": device.id})
        return device

    def update(self, device_id: str, request: UpdateDeviceRequest) -> DeviceOut:
        old = self._item(device_id)
        changes = request.model_dump(exclude_unset=True)
        if not changes:
            return repository.out(old)
        new = DeviceItem(**old.attribute_values)
        for name, value in changes.items():
            if value is None and name in ("name", "max_hourly_kwh", "timezone"):
                raise errors.ValidationError("This field cannot be emptied.",
                                             [errors.FieldError(name, "may not be null")])
            setattr(new, name, value)
        new.version = int(old.version) + 1
        device = repository.out(new)
        entries = [_entry("device.updated", device, new.version)]
        repository.replace(old, new, entries)
        self._outbox.deliver(entries)
        return device

    def delete(self, device_id: str) -> None:
        item = self._item(device_id)
        entries = [_entry("device.deleted", repository.out(item), int(item.version) + 1)]
        repository.delete(item, entries)
        self._outbox.deliver(entries)

    def add_owner(self, device_id: str, user_id: str) -> DeviceOut:
        """Idempotent: an existing owner changes nothing and publishes nothing."""
        item = self._item(device_id)
        if repository.owned_by(item, user_id):
            return repository.out(item)
        if not self._user_exists(user_id):
            raise errors.NotFoundError("No such user.", [errors.FieldError("user_id", "no such user")])
        return self._set_owner(item, user_id, owned=True)

    def remove_owner(self, device_id: str, user_id: str) -> DeviceOut:
        """Idempotent: removing a non-owner changes nothing and publishes nothing."""
        item = self._item(device_id)
        if not repository.owned_by(item, user_id):
            return repository.out(item)
        return self._set_owner(item, user_id, owned=False)

    def forget_user(self, user_id: str) -> int:
        """A user was deleted: remove each of their ownerships (each publishes its event)."""
        removed = 0
        for device_id in repository.devices_of(user_id):
            item = repository.get(device_id)
            if item is not None and repository.owned_by(item, user_id):
                self._set_owner(item, user_id, owned=False)
                removed += 1
        return removed

    # --- API keys ---------------------------------------------------------------------

    def create_api_key(self, device_id: str) -> ApiKeyCreated:
        self._item(device_id)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        repository.save_key(ApiKeyItem(
            key_id, device_id=device_id, secret_sha256=_digest(secret),
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        ))
        return ApiKeyCreated(key_id=key_id, api_key=f"{key_id}.{secret}")

    def list_api_keys(self, device_id: str) -> ApiKeyPage:
        self._item(device_id)
        return ApiKeyPage(items=[ApiKeyOut(key_id=k.key_id, device_id=k.device_id, created_at=k.created_at)
                                 for k in repository.keys_of(device_id)])

    def revoke_api_key(self, device_id: str, key_id: str) -> None:
        key = repository.get_key(key_id)
        if key is None or key.device_id != device_id:
            raise errors.NotFoundError("No such API key for this device.")
        repository.delete_key(key)

    def device_for_api_key(self, api_key: str) -> str:
        """The device an API key belongs to, or 401 (keys are random, so SHA-256 suffices)."""
        key_id, _, secret = api_key.partition(".")
        key = repository.get_key(key_id) if key_id and secret else None
        if key is None or not hmac.compare_digest(key.secret_sha256, _digest(secret)):
            raise errors.UnauthorizedError("The API key is not valid.")
        return key.device_id

    # --- internals --------------------------------------------------------------------

    def _set_owner(self, item: DeviceItem, user_id: str, owned: bool) -> DeviceOut:
        after = DeviceItem(**item.attribute_values)
        after.version = int(item.version) + 1
        owners_after = set(item.owner_ids or ())
        after.owner_ids = (owners_after | {user_id} if owned else owners_after - {user_id}) or None
        kind = "device.owner_added" if owned else "device.owner_removed"
        device = repository.out(after)
        entries = [_entry(kind, device, int(after.version), user_id=user_id)]
        repository.set_owner(item, user_id, owned, entries)
        self._outbox.deliver(entries)
        return device

    def _require_users(self, user_ids: list[str]) -> None:
        missing = [u for u in user_ids if not self._user_exists(u)]
        if missing:
            raise errors.ValidationError(
                "Every owner must be an existing user.",
                [errors.FieldError("owner_ids", f"no such user: {u}") for u in missing],
            )

    def _item(self, device_id: str) -> DeviceItem:
        item = repository.get(device_id)
        if item is None:
            raise errors.NotFoundError("No such device.")
        return item

    def _visible(self, principal: Principal, device_id: str) -> DeviceItem:
        item = repository.get(device_id)
        if item is None or (not principal.is_admin and not repository.owned_by(item, principal.user_id)):
            raise errors.NotFoundError("No such device.")
        return item


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _entry(kind: str, device: DeviceOut, version: int, **extra: str) -> outbox.Entry:
    return outbox.entry(TOPIC, Event(kind, device.id, version, {"device": device.model_dump(mode="json"), **extra}))
