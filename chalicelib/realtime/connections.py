"""The registry of open WebSocket connections (the `connections` and `presence` tables).

`connections` holds one item per connection (who opened it, with which role), read when a
frame arrives. `presence` holds one item per user, and one for the admins (`role:admin`),
whose map `conns` (connection id -> {u: user, r: role, e: expiry}) holds that key's open connections, so that the sockets
of a hundred users (a batch's owners) are found with one BatchGetItem and the admins' with
one GetItem, never with a query per user or a scan.

API Gateway closes a connection after two hours at most and `$disconnect` is not
guaranteed, so every entry carries an expiry (TTL on `connections`); reads skip expired
entries, since DynamoDB deletes them up to two days late, and drop them from `presence`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import DoesNotExist

from chalicelib import names
from chalicelib.observability import logger
from chalicelib.platform.conditions import applied
from chalicelib.platform.persistence import Item

MAX_CONNECTION_S = 2 * 60 * 60
ADMINS_KEY = "role:admin"  # the presence item that lists every admin's connections


class ConnectionItem(Item):
    class Meta:
        table_name = names.resource_name("connections")

    connection_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    role = UnicodeAttribute()
    connected_at = NumberAttribute()
    expires_at = NumberAttribute()


@dataclass(frozen=True)
class Connection:
    connection_id: str
    user_id: str
    role: str  # the role it was opened with; frames are authorized against the user's current one
    connected_at: float = 0.0


class PresenceItem(Item):
    class Meta:
        table_name = names.resource_name("presence")

    user_id = UnicodeAttribute(hash_key=True)
    conns: MapAttribute[str, Any] = MapAttribute(null=True)  # connection id -> {"u": user id, "r": role, "e": expiry (epoch s)}


def _presence_keys(user_id: str, role: str) -> list[str]:
    return [user_id, ADMINS_KEY] if role == "admin" else [user_id]


def register(connection_id: str, user_id: str, role: str, now: float | None = None) -> None:
    now = now if now is not None else time.time()
    expires_at = int(now) + MAX_CONNECTION_S
    ConnectionItem(connection_id, user_id=user_id, role=role, connected_at=now, expires_at=expires_at).save()
    entry = {"u": user_id, "r": role, "e": expires_at}
    for key in _presence_keys(user_id, role):
        _add_presence(key, connection_id, entry)


def _add_presence(key: str, connection_id: str, entry: dict[str, Any]) -> None:
    """One entry into a presence item's map (made with the first entry when it has none)."""
    item = PresenceItem(key)

    def add() -> None:
        item.update(actions=[PresenceItem.conns[connection_id].set(entry)], condition=PresenceItem.conns.exists())

    def make() -> None:
        item.update(actions=[PresenceItem.conns.set({connection_id: entry})],
                    condition=PresenceItem.conns.does_not_exist())

    # A map made by another connection between `add` and `make` is added to on the second `add`.
    if not (applied(add) or applied(make) or applied(add)):
        raise RuntimeError(f"the presence of {key!r} kept changing; connection not registered")


def forget(connection_id: str, known: Connection | None = None) -> None:
    """Remove a connection from both tables (nothing happens for an unknown one).

    `known`: what a caller read of it from `presence`, whose entry then goes even when the
    connection's own item is already gone (an earlier forget that stopped half-way).
    """
    old = ConnectionItem._get_connection().delete_item(connection_id, return_values=ALL_OLD).get("Attributes")
    keys = set(_presence_keys(known.user_id, known.role)) if known else set()
    if old:
        gone = ConnectionItem.from_raw_data(old)
        keys.update(_presence_keys(gone.user_id, gone.role))
    _remove_presence(connection_id, sorted(keys))


def _remove_presence(connection_id: str, keys: Iterable[str]) -> None:
    for key in keys:
        PresenceItem(key).update(actions=[PresenceItem.conns[connection_id].remove()])


def get(connection_id: str, now: float | None = None) -> Connection | None:
    now = now if now is not None else time.time()
    try:
        item = ConnectionItem.get(connection_id)
    except DoesNotExist:
        return None
    if item.expires_at < now:
        return None
    return Connection(item.connection_id, item.user_id, item.role, float(item.connected_at))


def of_user(user_id: str, now: float | None = None) -> list[Connection]:
    """The user's live connections (expired entries are skipped)."""
    return of_users([user_id], now)[user_id]


def of_users(user_ids: Iterable[str], now: float | None = None) -> dict[str, list[Connection]]:
    """The live connections of each of these users (an empty list for one with none), a hundred to a request."""
    now = now if now is not None else time.time()
    found: dict[str, list[Connection]] = {user_id: [] for user_id in set(user_ids)}
    for item in _presence_items(list(found)):
        found[item.user_id] = _live(item, now)
    return found


def of_admins(now: float | None = None) -> list[Connection]:
    """Every live connection of an admin (admins receive every alert and chat frame)."""
    return of_users([ADMINS_KEY], now)[ADMINS_KEY]


def _presence_items(keys: list[str]) -> Iterable[PresenceItem]:
    return PresenceItem.batch_get(keys, consistent_read=True)


def _live(item: PresenceItem, now: float) -> list[Connection]:
    live: list[Connection] = []
    expired: list[str] = []
    for connection_id, entry in (item.conns.as_dict() if item.conns is not None else {}).items():
        if float(entry.get("e", 0)) < now:
            expired.append(connection_id)
            continue
        live.append(Connection(connection_id, str(entry.get("u", "")), str(entry.get("r", ""))))
    for connection_id in expired:  # a $disconnect that never came: tidy up (best effort)
        try:
            _remove_presence(connection_id, [item.user_id])
        except Exception as exc:  # noqa: BLE001 - the next read skips them again
            logger.info("expired connection not removed", extra={"connection_id": connection_id, "error": str(exc)})
    return live
