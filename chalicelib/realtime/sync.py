"""Real time's consumer of identity events: a deleted or signed-out user's sockets are closed."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.observability import logger
from chalicelib.platform.consumer import PermanentError
from chalicelib.realtime.push import Pusher

CLOSING_EVENTS = {"user.deleted", "user.sessions_revoked"}


class _UserEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    entity_id: str


def apply(pusher: Pusher, body: str) -> None:
    try:
        event = _UserEvent.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise PermanentError(f"not an identity event: {exc}") from exc
    if not event.type.startswith("user."):
        raise PermanentError(f"unknown event type {event.type!r}")
    if event.type in CLOSING_EVENTS:
        closed = pusher.close_user(event.entity_id)
        logger.info("connections of a user closed", extra={"user_id": event.entity_id, "closed": closed,
                                                           "reason": event.type})
