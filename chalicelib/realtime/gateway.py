"""The WebSocket API's handlers: who may connect, and the frames every client may send."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalice.app import Response, WebsocketAPI, WebsocketEvent

from chalicelib import errors
from chalicelib.http import Principal
from chalicelib.observability import logger
from chalicelib.platform import websocket
from chalicelib.realtime import connections

MAX_FRAME_BYTES = 32 * 1024


class RealtimeGateway:
    """Connect, disconnect and message handling, with the identity check injected."""

    def __init__(self, websocket_api: WebsocketAPI, authenticate: Callable[[str], Principal]) -> None:
        self._api = websocket_api
        self._authenticate = authenticate

    def connect(self, event: WebsocketEvent) -> Response | None:
        """Accept only a valid access token (`?token=`); anything else is refused with 401."""
        query = event.to_dict().get("queryStringParameters") or {}
        token = query.get("token") or ""
        try:
            principal = self._authenticate(token)
        except errors.UnauthorizedError as exc:
            logger.info("websocket refused", extra={"reason": exc.message})
            return Response(status_code=401, body=json.dumps({"error": {"code": "unauthorized",
                                                                       "message": exc.message}}))
        connections.register(event.connection_id, principal.user_id, principal.role)
        logger.info("websocket connected", extra={"user_id": principal.user_id})
        return None

    def disconnect(self, event: WebsocketEvent) -> None:
        connections.forget(event.connection_id)

    def message(self, event: WebsocketEvent) -> None:
        """Dispatch one client frame; a bad frame gets an `error` frame, never a crash."""
        action = None
        try:
            frame = self._parse(event.body)
            action = frame.get("action")
            if action == "ping":
                self.send(event.connection_id, {"type": "pong"})
                return
            raise errors.ValidationError(f"Unknown action {action!r}.",
                                         [errors.FieldError("action", "unknown action")])
        except errors.AppError as exc:
            self.send(event.connection_id, {"type": "error", "action": action,
                                            "error": {"code": exc.code, "message": exc.message}})

    def send(self, connection_id: str, frame: dict[str, Any]) -> bool:
        """Push one frame; a gone connection is forgotten and False returned."""
        try:
            websocket.send(self._api, connection_id, json.dumps(frame))
            return True
        except websocket.ConnectionGoneError:
            connections.forget(connection_id)
            return False

    @staticmethod
    def _parse(body: str) -> dict[str, Any]:
        if len(body) > MAX_FRAME_BYTES:
            raise errors.PayloadTooLargeError("The frame is too large.")
        try:
            frame = json.loads(body)
        except ValueError as exc:
            raise errors.InvalidJsonError("The frame is not valid JSON.") from exc
        if not isinstance(frame, dict) or not isinstance(frame.get("action"), str):
            raise errors.ValidationError("A frame is an object with an action.",
                                         [errors.FieldError("action", "required")])
        return frame
