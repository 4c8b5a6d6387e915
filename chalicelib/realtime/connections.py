"""The registry of open WebSocket connections, per user (the `connections` table).

API Gateway closes a connection after two hours at most and `$disconnect` is not
guaranteed, so every entry carries an expiry (TTL) and reads skip expired entries, since
DynamoDB deletes them up to two days late.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib import names

MAX_CONNECTION_S = 2 * 60 * 60


class ByUser(GlobalSecondaryIndex["ConnectionItem"]):
    class Meta:
        index_name = "by_user"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    connection_id = UnicodeAttribute(range_key=True)


class ConnectionItem(Model):
    class Meta:
        table_name = names.resource_name("connections")

    connection_id = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()
    role = UnicodeAttribute()
    connected_at = NumberAttribute()
    expires_at = NumberAttribute()
    by_user = ByUser()


@dataclass(frozen=True)
class Connection:
    connection_id: str
    user_id: str
    role: str


def register(connection_id: str, user_id: str, role: str, now: float | None = None) -> None:
    now = now if now is not None else time.time()
    ConnectionItem(
        connection_id, user_id=user_id, role=role, connected_at=now, expires_at=int(now) + MAX_CONNECTION_S
    ).save()


def forget(connection_id: str) -> None:
    ConnectionItem(connection_id).delete()


def get(connection_id: str, now: float | None = None) -> Connection | None:
    now = now if now is not None else time.time()
    try:
        item = ConnectionItem.get(connection_id)
    except DoesNotExist:
        return None
    if item.expires_at < now:
        return None
    return Connection(item.connection_id, item.user_id, item.role)


def of_user(user_id: str, now: float | None = None) -> list[Connection]:
    """The user's live connections (expired entries are skipped)."""
    now = now if now is not None else time.time()
    return [
        Connection(item.connection_id, item.user_id, item.role)
        for item in ConnectionItem.by_user.query(user_id)
        if item.expires_at >= now
    ]


def of_users(user_ids: Iterable[str], now: float | None = None) -> dict[str, list[Connection]]:
    """The live connections of each of these users (an empty list for one with none)."""
    return {user_id: of_user(user_id, now) for user_id in set(user_ids)}


def of_admins(now: float | None = None) -> list[Connection]:
    """Every live connection of an admin (admins receive every alert and chat frame)."""
    now = now if now is not None else time.time()
    return [
        Connection(item.connection_id, item.user_id, item.role)
        for item in ConnectionItem.scan(filter_condition=ConnectionItem.role == "admin")
        if item.expires_at >= now
    ]
