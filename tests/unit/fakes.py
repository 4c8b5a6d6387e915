"""In-memory stand-ins for the ports the services are given: no endpoint, no process, no clock.

Each keeps the contract its port's docstring states (conflicts on a stale version or a taken
id, tombstones that continue versions), so a service behaves here as it does on DynamoDB.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from chalicelib import errors
from chalicelib.alerts.domain import ADMIN_FEED
from chalicelib.alerts.models import AlertOut
from chalicelib.chat.domain import STATUS_ORDER, Conversation, Message, StatusChangedError
from chalicelib.chat.repository import decode_status_cursor
from chalicelib.devices.domain import ApiKey, Change, Device
from chalicelib.identity.domain import Account, username_key
from chalicelib.messages import Alert, ReadingsUpdated
from chalicelib.monitoring.domain import (
    Applied,
    HourTotal,
    Meter,
    RegisterHour,
    RegisterWindow,
    WriteStats,
    deadline_shard,
)
from chalicelib.monitoring.readings import Entry, Reading
from chalicelib.platform import outbox
from chalicelib.platform.consumer import Delivery, Outcome
from chalicelib.platform.pagination import bad_cursor, by_name, decode_cursor, encode_cursor


class RecordingEvents:
    """The outbox port: remembers every event delivered, in order."""

    def __init__(self) -> None:
        self.delivered: list[outbox.Entry] = []

    def deliver(self, entries: Sequence[outbox.Entry]) -> None:
        self.delivered.extend(entries)

    def types(self) -> list[str]:
        return [entry.event.type for entry in self.delivered]


class InMemoryInbox:
    """The alerts' inbox port on a dictionary: (inbox, alert id) -> a copy, as in the table. The
    feed's copies are `ADMIN_FEED`'s; an admin's acknowledgement is a copy of their own, made by
    acknowledging (never pushed). Pages follow a cursor that says where the listing stopped."""

    @dataclass
    class Copy:
        alert: Alert
        pushed: bool | None = False  # None: made by an acknowledgement, not delivered
        acknowledged_at: str | None = None

    def __init__(self) -> None:
        self.copies: dict[tuple[str, str], InMemoryInbox.Copy] = {}
        self.feed_acknowledged: set[str] = set()  # the feed's alerts some admin acknowledged

    def open_by_device(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for (inbox, alert_id), copy in self.copies.items():
            if inbox == ADMIN_FEED and alert_id not in self.feed_acknowledged:
                counts[copy.alert.device_id] = counts.get(copy.alert.device_id, 0) + 1
        return counts

    def store(self, user_id: str, alert: Alert) -> bool:
        if (user_id, alert.id) in self.copies:
            return False
        self.copies[(user_id, alert.id)] = InMemoryInbox.Copy(alert)
        return True

    def unpushed(self, user_id: str, alert_id: str) -> bool:
        copy = self.copies.get((user_id, alert_id))
        return copy is not None and copy.pushed is False

    def mark_pushed(self, user_id: str, alert_id: str) -> None:
        self.copies[(user_id, alert_id)].pushed = True  # only ever after `store`: a KeyError says otherwise

    def list_page(self, user_id: str, is_admin: bool, limit: int, cursor: str | None,
                  unacknowledged: bool) -> tuple[list[AlertOut], str | None]:
        phase, after = self._decode(cursor, user_id, is_admin)
        out: list[AlertOut] = []
        while True:
            for alert in self._listed(user_id, is_admin, phase):
                if after is not None and _place(alert) >= after:
                    continue
                if len(out) == limit:
                    return out, self._encode(phase, user_id, is_admin, after)
                out.append(alert)
                after = _place(alert)
            if phase == "acknowledged" or unacknowledged:
                return out, None
            phase, after = "acknowledged", None

    def acknowledge(self, user_id: str, alert_id: str, is_admin: bool, now: dt.datetime) -> AlertOut | None:
        source = self.copies.get((ADMIN_FEED if is_admin else user_id, alert_id))
        if source is None:
            return None
        if is_admin:
            self.feed_acknowledged.add(alert_id)
        mine = self.copies.setdefault((user_id, alert_id), InMemoryInbox.Copy(source.alert, pushed=None))
        mine.acknowledged_at = mine.acknowledged_at or now.astimezone(dt.UTC).isoformat(timespec="seconds")
        return AlertOut(**source.alert.model_dump(), acknowledged_at=mine.acknowledged_at)

    def delete_device(self, device_id: str, before: str) -> int:
        gone = [key for key, copy in self.copies.items()
                if copy.alert.device_id == device_id and _place(copy.alert) < before]
        for key in gone:
            del self.copies[key]
        return len(gone)

    def _listed(self, user_id: str, is_admin: bool, phase: str) -> list[AlertOut]:
        """One phase of a user's listing, newest first: the unacknowledged alerts of their inbox (an
        admin's: the feed's) or the ones they acknowledged."""
        def acknowledged_at(alert_id: str) -> str | None:
            mine = self.copies.get((user_id, alert_id))
            return None if mine is None else mine.acknowledged_at

        if phase == "pending":
            inbox = ADMIN_FEED if is_admin else user_id
            found = [AlertOut(**c.alert.model_dump(), acknowledged_at=None) for (u, a), c in self.copies.items()
                     if u == inbox and acknowledged_at(a) is None]
        else:
            found = [AlertOut(**c.alert.model_dump(), acknowledged_at=c.acknowledged_at)
                     for (u, _), c in self.copies.items() if u == user_id and c.acknowledged_at is not None]
        return sorted(found, key=_place, reverse=True)

    @staticmethod
    def _encode(phase: str, user_id: str, is_admin: bool, after: str | None) -> str:
        inbox = ADMIN_FEED if phase == "pending" and is_admin else user_id
        start = {"user_id": {"S": inbox}, "at": {"S": after}} if after else None
        return f"{phase[0]}.{encode_cursor(start) or ''}"

    @staticmethod
    def _decode(cursor: str | None, user_id: str, is_admin: bool) -> tuple[str, str | None]:
        """(phase, the place of the last alert listed); 422 for a cursor not from this inbox."""
        if not cursor:
            return "pending", None
        letter, _, rest = cursor.partition(".")
        phase = {"p": "pending", "a": "acknowledged"}.get(letter)
        if phase is None:
            raise bad_cursor()
        key = decode_cursor(rest, {"user_id", "at"}) if rest else None
        inbox = ADMIN_FEED if phase == "pending" and is_admin else user_id
        if key is not None and key["user_id"]["S"] != inbox:
            raise bad_cursor()
        return phase, None if key is None else key["at"]["S"]


def _place(alert: Alert) -> str:
    """An alert's place in an inbox, as the table orders it: creation time, then id."""
    return f"{alert.created_at}#{alert.id}"



class InMemoryDevices:
    """The devices repository on dictionaries; `staged` holds every event stored with a change."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.tombstones: dict[str, Device] = {}
        self.keys: dict[str, ApiKey] = {}
        self.staged: list[outbox.Entry] = []

    def get(self, device_id: str) -> Device | None:
        return self.devices.get(device_id)

    def next_version(self, device_id: str) -> int:
        tombstone = self.tombstones.get(device_id)
        return 1 if tombstone is None else tombstone.version + 1

    def device_ids_of(self, user_id: str) -> list[str]:
        return sorted(d.id for d in self.devices.values() if d.owned_by(user_id))

    def devices_of(self, user_id: str) -> list[Device]:
        return [self.devices[i] for i in self.device_ids_of(user_id)]

    def list_page(self, limit: int, cursor: str | None, prefix: str | None = None) -> tuple[list[Device], str | None]:
        order = sorted((by_name(d.name, d.id), d) for d in self.devices.values()
                       if d.name.lower().startswith((prefix or "").lower()))
        after = [d for key, d in order if cursor is None or key > cursor]
        page = after[:limit]
        return page, by_name(page[-1].name, page[-1].id) if len(after) > limit else None

    def by_serials(self, serials: Sequence[str]) -> dict[str, Device]:
        return {d.serial: d for d in self.devices.values() if d.serial is not None and d.serial in serials}

    def _serial_free(self, device: Device) -> None:
        if device.serial and any(d.serial == device.serial and d.id != device.id for d in self.devices.values()):
            raise errors.ConflictError(f"Another device has the serial '{device.serial}'.")

    def create(self, device: Device, entries: Sequence[outbox.Entry]) -> None:
        if device.id in self.devices or device.version != self.next_version(device.id):
            raise errors.ConflictError(f"A device with id '{device.id}' exists.")
        self._serial_free(device)
        self.devices[device.id] = device
        self.staged.extend(entries)

    def save_all(self, changes: Sequence[Change]) -> list[errors.ConflictError | None]:
        outcome: list[errors.ConflictError | None] = []
        for change in changes:
            try:
                if change.old is None:
                    self.create(change.new, change.entries)
                else:
                    self.replace(change.old, change.new, change.entries)
                outcome.append(None)
            except errors.ConflictError as conflict:
                outcome.append(conflict)
        return outcome

    def _current(self, device: Device) -> None:
        stored = self.devices.get(device.id)
        if stored is None or stored.version != device.version:
            raise errors.ConflictError("The device changed meanwhile; reload and try again.")

    def replace(self, old: Device, new: Device, entries: Sequence[outbox.Entry]) -> None:
        self._current(old)
        self._serial_free(new)
        self.devices[new.id] = new
        self.staged.extend(entries)

    def set_owner(self, device: Device, user_id: str, owned: bool, entries: Sequence[outbox.Entry]) -> Device:
        self._current(device)
        owners = device.owner_ids | {user_id} if owned else device.owner_ids - {user_id}
        now = self.devices[device.id] = replace(device, version=device.version + 1, owner_ids=owners)
        self.staged.extend(entries)
        return now

    def delete(self, device: Device, entries: Sequence[outbox.Entry]) -> None:
        self._current(device)
        del self.devices[device.id]
        self.tombstones[device.id] = replace(device, version=device.version + 1)
        self.keys = {k: v for k, v in self.keys.items() if v.device_id != device.id}
        self.staged.extend(entries)

    def save_key(self, key: ApiKey) -> None:
        self.keys[key.key_id] = key

    def get_key(self, key_id: str) -> ApiKey | None:
        return self.keys.get(key_id)

    def keys_of(self, device_id: str) -> list[ApiKey]:
        return [k for k in self.keys.values() if k.device_id == device_id]

    def delete_key(self, key: ApiKey) -> None:
        self.keys.pop(key.key_id, None)


@dataclass(frozen=True)
class Push:
    user_ids: tuple[str, ...]
    frame: dict[str, Any]
    admins: bool


class RecordingPusher:
    """Real time's UserPush: remembers every push; `take()` hands over those since the last call;
    `failing` makes the next push raise (one that failed midway, before its caller noted it).
    A push reaches each user once and, with `admins`, ADMIN_SOCKETS admin sockets."""

    ADMIN_SOCKETS = 2

    def __init__(self) -> None:
        self.pushes: list[Push] = []
        self.failing = False
        self._taken = 0

    def to_users(self, user_ids: Iterable[str], frame: dict[str, Any], *, admins: bool = False) -> int:
        users = tuple(user_ids)
        if self.failing:
            self.failing = False
            raise errors.DependencyUnavailableError("The socket API is unavailable.")
        self.pushes.append(Push(users, frame, admins))
        return len(users) + (self.ADMIN_SOCKETS if admins else 0)

    def take(self) -> list[Push]:
        new, self._taken = self.pushes[self._taken:], len(self.pushes)
        return new

    def reached(self) -> list[tuple[list[str], bool]]:
        """Each push: (its users, whether the admins too)."""
        return [(list(p.user_ids), p.admins) for p in self.pushes]


class RecordingMeterStatus:
    """The fleet status port: what each meter was told, in order."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, str | None]] = []

    def reported(self, device_id: str) -> None:
        self.changes.append(("reported", device_id, None))

    def went_over(self, device_id: str, hour: str) -> None:
        self.changes.append(("went_over", device_id, hour))

    def silenced(self, device_id: str) -> None:
        self.changes.append(("silenced", device_id, None))


class InMemoryHourTotals:
    """Monitoring's hours on a dictionary: an add is refused whole if any timestamp was counted."""

    def __init__(self) -> None:
        self.hours: dict[tuple[str, str], HourTotal] = {}
        self.fail_next_add: Exception | None = None  # raised once by the next add
        self.revisions: dict[str, int] = {}  # each register device's revision
        self.before_register_write: Callable[[], None] | None = None  # run once, inside the next register write

    def add(self, device_id: str, hour: str, readings: list[Reading], stats: WriteStats,
            silent_at: str | None = None) -> Applied | None:
        if self.fail_next_add is not None:
            error, self.fail_next_add = self.fail_next_add, None
            raise error
        stats.add({})
        stored = self.hours.setdefault((device_id, hour), HourTotal(device_id, hour, Decimal(0), 0))
        if any(r.key in stored.values for r in readings):
            return None
        before = stored.total_kwh
        stored.total_kwh += sum((r.kwh for r in readings), Decimal(0))
        stored.reading_count += len(readings)
        stored.values.update({r.key: r.kwh for r in readings})
        if silent_at is not None:
            stored.silent_at = silent_at
        return Applied(before, stored.total_kwh, stored.reading_count)

    def drop_deadlines(self, hours: list[tuple[str, str]], stats: WriteStats) -> None:
        stats.requests += 1
        for key in hours:
            if key in self.hours and self.hours[key].silent_at is not None:
                self.hours[key].silent_at = None
                stats.units += 1

    def set_deadline(self, device_id: str, hour: str, silent_at: str | None) -> None:
        if (device_id, hour) in self.hours:
            self.hours[(device_id, hour)].silent_at = silent_at

    def due(self, shard: int, until: str, limit: int, cursor: str | None) -> tuple[list[tuple[str, str]], str | None]:
        after = None if cursor is None else (json.loads(cursor)[0], tuple(json.loads(cursor)[1]))
        found = sorted((h.silent_at, key) for key, h in self.hours.items()
                       if h.silent_at is not None and h.silent_at <= until and deadline_shard(key[0]) == shard
                       and (after is None or (h.silent_at, key) > after))
        page = found[:limit]
        return [key for _, key in page], json.dumps([page[-1][0], page[-1][1]]) if len(found) > limit else None

    def get(self, device_id: str, hour: str) -> HourTotal | None:
        stored = self.hours.get((device_id, hour))
        return None if stored is None else replace(stored, values=dict(stored.values))

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], HourTotal]:
        return {key: hour for key in keys if (hour := self.get(*key)) is not None}

    def between(self, device_id: str, first_hour: str, last_hour: str) -> list[HourTotal]:
        return [replace(h, values={}) for (d, hour), h in sorted(self.hours.items())
                if d == device_id and first_hour <= hour <= last_hour]

    def newest_first(self, device_id: str, first_hour: str, last_hour: str, page_size: int) -> Iterator[HourTotal]:
        for hour in reversed(self.between(device_id, first_hour, last_hour)):
            yield self.hours[(device_id, hour.hour_start)]

    def latest(self, device_id: str) -> HourTotal | None:
        mine = sorted(h for d, h in self.hours if d == device_id)
        return self.get(device_id, mine[-1]) if mine else None

    def delete_device(self, device_id: str) -> int:
        mine = [key for key in self.hours if key[0] == device_id]
        for key in mine:
            del self.hours[key]
        return len(mine)

    def register_window(self, device_id: str, hour: str) -> RegisterWindow:
        mine = sorted(h for d, h in self.hours if d == device_id)
        earlier = [h for h in mine if h < hour]
        later = [h for h in mine if h > hour]
        return RegisterWindow(self.revisions.get(device_id, 0), self.get(device_id, earlier[-1]) if earlier else None,
                              self.get(device_id, hour), self.get(device_id, later[0]) if later else None)

    def write_register(self, device_id: str, revision: int, hours: list[RegisterHour], stats: WriteStats,
                       handed_over: str | None = None) -> bool:
        stats.add({})
        if self.before_register_write is not None:  # what another writer does between the reads and the write
            step, self.before_register_write = self.before_register_write, None
            step()
        if self.revisions.get(device_id, 0) != revision:
            return False
        self.revisions[device_id] = revision + 1
        for hour in hours:
            stored = self.hours.get((device_id, hour.hour))
            silent_at = hour.silent_at or (stored.silent_at if stored else None)
            self.hours[(device_id, hour.hour)] = HourTotal(device_id, hour.hour, hour.total_kwh, len(hour.values),
                                                           dict(hour.values), silent_at, hour.reset)
        if handed_over is not None and (device_id, handed_over) in self.hours:
            self.hours[(device_id, handed_over)].silent_at = None
        return True


class RecordingRaisedAlerts:
    """Raised alerts on a dictionary: stored once by id; `sent` lists each announcement sent."""

    def __init__(self) -> None:
        self.stored: dict[str, Alert] = {}
        self.sent: list[Alert] = []
        self.deleted: list[tuple[str, str]] = []

    def announce(self, alert: Alert, now: dt.datetime, *, fresh: bool = False) -> bool:
        if alert.id in self.stored:
            return False
        self.stored[alert.id] = alert
        self.sent.append(alert)
        return True

    def delete_device(self, device_id: str, deleted_at: str) -> None:
        self.stored = {k: a for k, a in self.stored.items() if a.device_id != device_id}
        self.deleted.append((device_id, deleted_at))


class InMemoryUsers:
    """The identity repository on a dictionary: unique usernames, versions, never no admin."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.staged: list[outbox.Entry] = []

    def get(self, user_id: str) -> Account | None:
        return self.accounts.get(user_id)

    def find_by_username(self, username: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.username_key == username_key(username)), None)

    def ids_by_username(self, usernames: Sequence[str]) -> dict[str, str]:
        keys = {username_key(u) for u in usernames}
        return {a.username_key: a.id for a in self.accounts.values() if a.username_key in keys}

    def list_page(self, limit: int, cursor: str | None, query: str | None) -> tuple[list[Account], str | None]:
        found = [a for a in sorted(self.accounts.values(), key=lambda a: a.username_key)
                 if (cursor is None or a.username_key > cursor)
                 and (not query or a.username_key.startswith(username_key(query)))]
        return found[:limit], found[limit - 1].username_key if len(found) > limit else None

    def _claim(self, account: Account) -> None:
        holder = self.find_by_username(account.username)
        if holder is not None and holder.id != account.id:
            raise errors.ConflictError(f"The username '{account.username}' is taken.")

    def _admins_after(self, removed: Account, added: Account | None) -> None:
        admins = {a.id for a in self.accounts.values() if a.role == "admin"} - {removed.id}
        if added is not None and added.role == "admin":
            admins.add(added.id)
        if removed.role == "admin" and not admins:
            raise errors.ConflictError("The last admin cannot be removed or demoted.")

    def _current(self, account: Account) -> None:
        stored = self.accounts.get(account.id)
        if stored is None or stored.version != account.version:
            raise errors.ConflictError("The user was changed meanwhile; reload and try again.")

    def create(self, account: Account, entries: Sequence[outbox.Entry]) -> None:
        self._claim(account)
        self.accounts[account.id] = account
        self.staged.extend(entries)

    def replace(self, old: Account, new: Account, entries: Sequence[outbox.Entry]) -> None:
        self._current(old)
        self._claim(new)
        self._admins_after(old, new)
        self.accounts[new.id] = new
        self.staged.extend(entries)

    def delete(self, account: Account, entries: Sequence[outbox.Entry]) -> None:
        self._current(account)
        self._admins_after(account, None)
        del self.accounts[account.id]
        self.staged.extend(entries)

    def revoke_tokens(self, user_id: str, now: float, entries: Sequence[outbox.Entry]) -> None:
        account = self.accounts[user_id]
        self.accounts[user_id] = replace(account, tokens_valid_after=now)
        self.staged.extend(entries)


class InMemoryThrottle:
    """Counted windows on a dictionary: key -> (slots taken, window end)."""

    def __init__(self) -> None:
        self.windows: dict[str, tuple[int, float]] = {}

    def take_slot(self, key: str, limit: int, window_s: int, now: float) -> float:
        taken, ends = self.windows.get(key, (0, 0.0))
        if ends <= now:
            self.windows[key] = (1, int(now) + window_s)
            return 0.0
        if taken < limit:
            self.windows[key] = (taken + 1, ends)
            return 0.0
        return max(ends - now, 1.0)

    def slots_wait(self, key: str, limit: int, now: float) -> float:
        taken, ends = self.windows.get(key, (0, 0.0))
        return 0.0 if ends <= now or taken < limit else ends - now

    def clear_slots(self, key: str) -> None:
        self.windows.pop(key, None)


class InMemoryChat:
    """Chat's repository on dictionaries, with a clock of its own: each write is one millisecond after
    the one before, so activity times and message ids never tie. `rates` holds each conversation's
    window of client messages and how many were counted in it. Cursors are made and checked as the
    tables' are (another client's, or an unknown status, is refused)."""

    START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __init__(self) -> None:
        self.conversations: dict[str, Conversation] = {}
        self.stored: dict[tuple[str, str], Message] = {}  # (conversation id, message id) -> message
        self.rates: dict[str, tuple[str, int]] = {}
        self._ticks = 0

    def _now(self) -> str:
        self._ticks += 1
        return (self.START + dt.timedelta(milliseconds=self._ticks)).isoformat(timespec="milliseconds")

    def _of(self, client_id: str) -> list[Conversation]:
        """The client's conversations, newest activity first."""
        return sorted((c for c in self.conversations.values() if c.client_id == client_id),
                      key=_activity, reverse=True)

    def open_conversation(self, client_id: str) -> Conversation | None:
        return next((c for c in self._of(client_id) if c.status != "closed"), None)

    def open_or_create_conversation(self, client_id: str, client_name: str | None = None
                                    ) -> tuple[Conversation, bool]:
        known = self.open_conversation(client_id)
        if known is not None:
            return known, False
        number = len(self._of(client_id))
        while f"c-{client_id}-{number}" in self.conversations:
            number += 1
        now = self._now()
        made = self.conversations[f"c-{client_id}-{number}"] = Conversation(
            f"c-{client_id}-{number}", client_id, "bot", None, now, now, client_name)
        return made, True

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        return self.conversations.get(conversation_id)

    def set_status(self, conversation: Conversation, status: str, admin_id: str | None) -> Conversation:
        stored = self.conversations.get(conversation.id)
        if stored is None or stored.status != conversation.status:
            raise StatusChangedError(conversation.id)
        changed = self.conversations[conversation.id] = replace(stored, status=status, admin_id=admin_id or None,
                                                                updated_at=self._now())
        return changed

    def count_client_message(self, conversation: Conversation, window: str, limit: int) -> bool:
        if conversation.id not in self.conversations:
            return False
        current, counted = self.rates.get(conversation.id, ("", 0))
        if current == window and counted >= limit:
            return False
        self.rates[conversation.id] = (window, counted + 1 if current == window else 1)
        return True

    def touch(self, conversation: Conversation) -> None:
        stored = self.conversations.get(conversation.id)
        if stored is not None:
            self.conversations[conversation.id] = replace(stored, updated_at=self._now())

    def add_message(self, conversation_id: str, sender_id: str, sender_kind: str, text: str) -> Message:
        now = self._now()
        message = Message(f"{self._ticks:013d}-{self._ticks:08x}", conversation_id, sender_id, sender_kind,
                              text, now)
        self.stored[(conversation_id, message.id)] = message
        return message

    def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        return self.stored.get((conversation_id, message_id))

    def mark_read(self, conversation_id: str, message_id: str, reader_id: str) -> None:
        message = self.stored[(conversation_id, message_id)]  # only ever after get_message: a KeyError says otherwise
        self.stored[(conversation_id, message_id)] = replace(message, read_by=message.read_by | {reader_id})

    def messages(self, conversation_id: str, limit: int, cursor: str | None
                 ) -> tuple[list[Message], str | None]:
        start = decode_cursor(cursor, {"conversation_id", "message_id"})
        if start is not None and start["conversation_id"]["S"] != conversation_id:
            raise bad_cursor()
        after = "" if start is None else start["message_id"]["S"]
        following = sorted((m for (c, i), m in self.stored.items() if c == conversation_id and i > after),
                           key=lambda m: m.id)
        page = following[:limit]
        if len(following) <= limit:
            return page, None
        return page, encode_cursor({"conversation_id": {"S": conversation_id}, "message_id": {"S": page[-1].id}})

    def conversations_of(self, client_id: str, limit: int, cursor: str | None
                         ) -> tuple[list[Conversation], str | None]:
        start = decode_cursor(cursor, {"id", "client_id", "updated_at"})
        if start is not None and start["client_id"]["S"] != client_id:
            raise bad_cursor()
        following = [c for c in self._of(client_id) if start is None or _activity(c) < _started(start)]
        page = following[:limit]
        if len(following) <= limit:
            return page, None
        last = page[-1]
        return page, encode_cursor({"id": {"S": last.id}, "client_id": {"S": client_id},
                                    "updated_at": {"S": last.updated_at}})

    def all_conversations(self, limit: int, cursor: str | None) -> tuple[list[Conversation], str | None]:
        status, start = decode_status_cursor(cursor)
        rank = STATUS_ORDER.index
        newest_first = sorted(self.conversations.values(), key=_activity, reverse=True)
        following = [c for c in sorted(newest_first, key=lambda c: rank(c.status))
                     if rank(c.status) > rank(status)
                     or (c.status == status and (start is None or _activity(c) < _started(start)))]
        page = following[:limit]
        if len(following) <= limit:
            return page, None
        last = page[-1]
        return page, f"{last.status}." + (encode_cursor({"id": {"S": last.id}, "status": {"S": last.status},
                                                         "updated_at": {"S": last.updated_at}}) or "")


def _activity(conversation: Conversation) -> tuple[str, str]:
    """A conversation's place in a "newest activity first" listing (read backwards)."""
    return conversation.updated_at, conversation.id


def _started(key: dict[str, dict[str, str]]) -> tuple[str, str]:
    """The place of the conversation a cursor stopped at."""
    return key["updated_at"]["S"], key["id"]["S"]


class IngestorFixture:
    """The readings consumer on in-memory hours and alerts, its meters by id, fed message bodies as
    SQS hands them over; the live updates and status changes it made are kept."""

    def __init__(self, meters: Iterable[Meter], now: dt.datetime) -> None:
        from chalicelib.monitoring.ingest import Ingestor

        self.hours = InMemoryHourTotals()
        self.alerts = RecordingRaisedAlerts()
        self.meters: dict[str, Meter] = {m.device_id: m for m in meters}
        self.updates: list[ReadingsUpdated] = []
        self.status = RecordingMeterStatus()
        self.ingestor = Ingestor(self.hours, self.alerts, lookup=lambda ids: {i: self.meters.get(i) for i in ids},
                                 clock=lambda: now, notify=self.updates.append, status=self.status)
        self.sequence = 0

    def deliver(self, *bodies: Any, last_attempt: bool = False) -> tuple[Outcome, list[str]]:
        """Hand these message bodies to the consumer as one batch; the outcome and the message ids."""
        source = self.ingestor.source
        deliveries: list[Delivery[list[Entry]]] = []
        for body in bodies:
            self.sequence += 1
            text = body if isinstance(body, str) else json.dumps(body)
            deliveries.append(Delivery(f"m{self.sequence}", text, 1, last_attempt, source.parse(text)))
        return self.ingestor.handle_batch(deliveries), [d.message_id for d in deliveries]
