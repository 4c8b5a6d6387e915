"""The WebSocket API's handlers: who may connect, and the frames every client may send."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from chalice.app import Response, WebsocketEvent
from pydantic import BaseModel, ConfigDict, StringConstraints

from chalicelib import errors
from chalicelib.chat.service import ChatService
from chalicelib.errors import Principal, validate
from chalicelib.observability import logger
from chalicelib.platform import jsontext
from chalicelib.realtime import connections
from chalicelib.realtime.push import Pusher

MAX_FRAME_BYTES = 32 * 1024
ChatText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
ConversationId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SendFrame(_Strict):
    text: ChatText


class TypingFrame(_Strict):
    typing: bool
    conversation_id: ConversationId | None = None


class ReadFrame(_Strict):
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    conversation_id: ConversationId | None = None


class EmptyFrame(_Strict):
    pass


class ConversationFrame(_Strict):
    conversation_id: ConversationId


class ReplyFrame(_Strict):
    conversation_id: ConversationId
    text: ChatText


def _send(chat: ChatService, who: Principal, frame: Any) -> None:
    if who.is_admin:
        raise errors.ValidationError("Admins answer with chat.reply.", [errors.FieldError("action", "use chat.reply")])
    chat.send(who, frame.text)


@dataclass(frozen=True)
class _Action:
    frame: type[BaseModel]
    admins_only: bool
    run: Callable[[ChatService, Principal, Any], None]


_ACTIONS: dict[str, _Action] = {
    "chat.send": _Action(SendFrame, False, _send),
    "chat.typing": _Action(TypingFrame, False, lambda c, who, f: c.typing(who, f.typing, f.conversation_id)),
    "chat.read": _Action(ReadFrame, False, lambda c, who, f: c.read(who, f.message_id, f.conversation_id)),
    "chat.escalate": _Action(EmptyFrame, False, lambda c, who, f: c.escalate(who)),
    "chat.take_over": _Action(ConversationFrame, True, lambda c, who, f: c.take_over(who, f.conversation_id)),
    "chat.reply": _Action(ReplyFrame, True, lambda c, who, f: c.reply(who, f.conversation_id, f.text)),
    "chat.close": _Action(ConversationFrame, True, lambda c, who, f: c.close(who, f.conversation_id)),
}


class RealtimeGateway:
    """Connect, disconnect and message handling, with the identity check injected."""

    def __init__(self, pusher: Pusher, authenticate: Callable[[str], Principal],
                 current: Callable[[str, float], Principal | None], chat: ChatService | None = None) -> None:
        """`current(user_id, session_start)`: the user as they are now, None when that session has ended."""
        self._pusher = pusher
        self._authenticate = authenticate
        self._current = current
        self._chat = chat

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
            connection = connections.get(event.connection_id)
            if connection is None:
                raise errors.UnauthorizedError("This connection is not registered; reconnect.")
            # The user's role and session as they are now, not as they were when the socket opened:
            # a demoted admin or a reset password ends what the socket may do at once.
            principal = self._current(connection.user_id, connection.connected_at)
            if principal is None:
                self._error(event.connection_id, action, errors.UnauthorizedError("The session has ended; sign in again."))
                self._pusher.close(connection)
                logger.info("frame from an ended session; socket closed", extra={"user_id": connection.user_id})
                return
            self._dispatch(principal, str(action), frame)
        except errors.AppError as exc:
            self._error(event.connection_id, action, exc)

    def _error(self, connection_id: str, action: Any, exc: errors.AppError) -> None:
        self.send(connection_id, {"type": "error", "action": action,
                                  "error": {"code": exc.code, "message": exc.message,
                                            **({"details": [{"field": d.field, "message": d.message}
                                                            for d in exc.details]} if exc.details else {})}})

    def _dispatch(self, principal: Principal, action: str, frame: dict[str, Any]) -> None:
        spec = _ACTIONS.get(action)
        if spec is None:
            raise errors.ValidationError(f"Unknown action {action!r}.",
                                         [errors.FieldError("action", "unknown action")])
        if spec.admins_only and not principal.is_admin:
            raise errors.ForbiddenError("This action needs the admin role.")
        body = validate(spec.frame, {k: v for k, v in frame.items() if k != "action"})
        if self._chat is None:
            raise errors.DependencyUnavailableError("The chat is not available.")
        spec.run(self._chat, principal, body)

    def send(self, connection_id: str, frame: dict[str, Any]) -> bool:
        """Push one frame; a gone connection is forgotten and False returned."""
        return self._pusher.send(connection_id, frame)

    @staticmethod
    def _parse(body: str) -> dict[str, Any]:
        # The limit is in bytes; a character takes up to four of them in UTF-8.
        if len(body.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
            raise errors.PayloadTooLargeError("The frame is too large.")
        try:
            frame = jsontext.loads(body)
        except ValueError as exc:
            raise errors.InvalidJsonError("The frame is not valid JSON.") from exc
        if not isinstance(frame, dict) or not isinstance(frame.get("action"), str):
            raise errors.ValidationError("A frame is an object with an action.",
                                         [errors.FieldError("action", "required")])
        return frame
