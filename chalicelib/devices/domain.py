"""The devices context's domain: a device, an API key, and the port to where they are kept.

Plain values, no I/O: the service works on these, a repository (DynamoDB in production, a
dictionary in unit tests) stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib import errors
from chalicelib.platform import outbox
from chalicelib.tariffs import Tariff


@dataclass(frozen=True)
class Device:
    """A meter. `version` orders every change to it (ownership included); events carry it."""

    id: str
    name: str
    max_hourly_kwh: float
    timezone: str
    created_at: str
    description: str = ""
    address: str = ""
    tariff_per_kwh: float | None = None
    currency: str | None = None
    owner_ids: frozenset[str] = field(default_factory=frozenset)
    version: int = 1
    serial: str | None = None  # the meter's serial number, unique among devices
    tariffs: tuple[Tariff, ...] = ()  # time-of-use tariffs by effective date (see chalicelib.tariffs)
    reading_kind: str = "interval"  # "register": readings are the meter's cumulative register
    register_max_kwh: float | None = None  # a register's value before it rolls over (register devices only)

    def owned_by(self, user_id: str) -> bool:
        return user_id in self.owner_ids


@dataclass(frozen=True)
class ApiKey:
    """A device's key for `POST /readings`; only the secret's digest is kept."""

    key_id: str
    device_id: str
    secret_sha256: str
    created_at: str


@dataclass(frozen=True)
class Change:
    """A device created (`old` None) or replaced, with its events."""

    old: Device | None
    new: Device
    entries: Sequence[outbox.Entry]


class DeviceRepository(Protocol):
    """Where devices, their owners and their API keys are kept. Every change is stored with its
    events (`entries`, staged for the outbox) in one transaction; a change made against a device
    that changed meanwhile, or a new id that is taken, raises ConflictError."""

    def get(self, device_id: str) -> Device | None:
        """The device, None when it does not exist or was deleted."""
        ...

    def next_version(self, device_id: str) -> int:
        """The version a device created now with this id starts at: 1, or after its deleted one's."""
        ...

    def devices_of(self, user_id: str) -> list[Device]:
        """The devices a user owns, by id."""
        ...

    def device_ids_of(self, user_id: str) -> list[str]:
        """The ids of the devices a user owns (their ownership items), by id."""
        ...

    def list_page(self, limit: int, cursor: str | None, prefix: str | None = None) -> tuple[list[Device], str | None]:
        """A page of every device by name without case (then id), those whose name starts with
        `prefix` (without case) when given; a cursor not from this listing is a ValidationError."""
        ...

    def by_serials(self, serials: Sequence[str]) -> dict[str, Device]:
        """The devices with these serials, by serial (unknown ones left out)."""
        ...

    def create(self, device: Device, entries: Sequence[outbox.Entry]) -> None:
        """A ConflictError when the id or the serial is taken."""
        ...

    def replace(self, old: Device, new: Device, entries: Sequence[outbox.Entry]) -> None:
        """Any field, the owners and the serial included."""
        ...

    def save_all(self, changes: Sequence[Change]) -> list[errors.ConflictError | None]:
        """Many creations (`old` None) and replacements at once, each all or nothing on its own;
        for each, None or the conflict that refused it."""
        ...

    def set_owner(self, device: Device, user_id: str, owned: bool, entries: Sequence[outbox.Entry]) -> Device:
        """Add or remove one owner, bumping the version; the device as it is now."""
        ...

    def delete(self, device: Device, entries: Sequence[outbox.Entry]) -> None:
        """The device (its version bumped, kept as a tombstone), its ownerships and its keys."""
        ...

    def save_key(self, key: ApiKey) -> None: ...

    def get_key(self, key_id: str) -> ApiKey | None: ...

    def keys_of(self, device_id: str) -> list[ApiKey]: ...

    def delete_key(self, key: ApiKey) -> None: ...
