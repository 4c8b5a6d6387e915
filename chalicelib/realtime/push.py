"""Delivers server frames to every open connection of some users; prunes the gone ones."""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalice.app import WebsocketAPI, WebsocketDisconnectedError

from chalicelib.observability import logger
from chalicelib.platform import websocket
from chalicelib.realtime import connections
from chalicelib.realtime.connections import Connection

_PARALLEL_SENDS = 16


class Pusher:
    """Sends frames through the WebSocket management API."""

    def __init__(self, websocket_api: WebsocketAPI) -> None:
        self._api = websocket_api

    def send(self, connection_id: str, frame: dict[str, Any], known: Connection | None = None) -> bool:
        """One frame to one connection; False (and the connection forgotten) if it is gone."""
        websocket.configure(self._api)
        try:
            websocket.send(self._api, connection_id, json.dumps(frame))
            return True
        except websocket.ConnectionGoneError:
            connections.forget(connection_id, known)
            logger.info("gone connection pruned", extra={"connection_id": connection_id})
            return False

    def to_connections(self, targets: Iterable[Connection], frame: dict[str, Any]) -> int:
        """The frame to each connection (in parallel); returns how many received it."""
        unique = {c.connection_id: c for c in targets}
        if not unique:
            return 0
        if len(unique) == 1:
            (only,) = unique.values()
            return int(self.send(only.connection_id, frame, only))
        with ThreadPoolExecutor(max_workers=min(_PARALLEL_SENDS, len(unique))) as pool:
            return sum(pool.map(lambda c: self.send(c.connection_id, frame, c), unique.values()))

    @staticmethod
    def connections_of(user_ids: Iterable[str]) -> dict[str, list[Connection]]:
        """The open connections of each of these users."""
        return connections.of_users(user_ids)

    def to_users(self, user_ids: Iterable[str], frame: dict[str, Any], *, admins: bool = False) -> int:
        """The frame to every open connection of these users (and of every admin, if asked)."""
        keys = set(user_ids) | ({connections.ADMINS_KEY} if admins else set())
        targets = [c for found in connections.of_users(keys).values() for c in found]
        return self.to_connections(targets, frame)

    def close_user(self, user_id: str) -> int:
        """Close every open connection of a user (deleted, or signed out everywhere)."""
        return sum(self.close(connection) for connection in connections.of_user(user_id))

    def close(self, connection: Connection) -> bool:
        """Close one connection and forget it; False when it was closed already."""
        websocket.configure(self._api)
        try:
            self._api.close(connection.connection_id)
            closed = True
        except WebsocketDisconnectedError:
            logger.info("connection already closed", extra={"connection_id": connection.connection_id})
            closed = False
        connections.forget(connection.connection_id, connection)
        return closed
