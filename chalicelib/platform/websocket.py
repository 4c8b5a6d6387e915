"""Makes `app.websocket_api` usable from every handler, WebSocket or not.

Chalice configures `app.websocket_api` only inside WebSocket handlers; a consumer that
pushes frames must configure it from the settings. Locally, the management endpoint
Chalice derives from the API id does not exist, so the session hands out clients that
point at the local gateway instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Protocol

from chalice.app import WebsocketAPI, WebsocketDisconnectedError

from chalicelib import aws
from chalicelib.settings import Settings, get_settings


class UserPush(Protocol):
    """The port through which a context pushes frames to users' open sockets (real time's Pusher)."""

    def to_users(self, user_ids: Iterable[str], frame: dict[str, Any], *, admins: bool = False) -> int:
        """The frame to every open connection of these users (and of every admin); how many got it."""
        ...


class ConnectionGoneError(Exception):
    """The WebSocket connection is closed; the caller should forget it."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"connection {connection_id} is gone")
        self.connection_id = connection_id


class ManagementSession:
    """What `app.websocket_api.session` needs: `region_name` and `client()`.

    Clients come from the shared session under its lock (boto3 sessions are not safe to
    create clients from concurrently); with `endpoint_url` every client goes there instead
    of the URL Chalice derives (the local gateway).
    """

    def __init__(self, endpoint_url: str | None) -> None:
        self._endpoint_url = endpoint_url

    @property
    def region_name(self) -> str | None:
        return aws.session().region_name  # type: ignore[no-any-return]

    def client(self, service_name: str, **kwargs: Any) -> Any:
        if self._endpoint_url:
            kwargs["endpoint_url"] = self._endpoint_url
        return aws.create_client(service_name, **kwargs)


_configure_lock = threading.Lock()


def configure(websocket_api: WebsocketAPI, settings: Settings | None = None) -> None:
    """Give `websocket_api` a session and, outside WebSocket handlers, its endpoint."""
    settings = settings or get_settings()
    with _configure_lock:
        if websocket_api.session is None:
            websocket_api.session = ManagementSession(settings.websocket_management_url)
        if settings.websocket_domain:
            websocket_api.configure(settings.websocket_domain, settings.websocket_stage)
        elif settings.websocket_api_id:
            websocket_api.configure_from_api_id(settings.websocket_api_id, settings.websocket_stage)


def send(websocket_api: WebsocketAPI, connection_id: str, frame: str) -> None:
    """Push one frame; a closed connection raises ConnectionGoneError."""
    try:
        websocket_api.send(connection_id, frame)
    except WebsocketDisconnectedError as exc:
        raise ConnectionGoneError(connection_id) from exc
