"""Real time's consumer of identity events: a deleted or signed-out user's sockets are closed."""

from __future__ import annotations

from chalicelib.messages import SyncEvent
from chalicelib.observability import logger
from chalicelib.realtime.push import Pusher

CLOSING_EVENTS = {"user.deleted", "user.sessions_revoked"}


def apply(pusher: Pusher, event: SyncEvent) -> None:
    if event.type in CLOSING_EVENTS:
        closed = pusher.close_user(event.entity_id)
        logger.info("connections of a user closed", extra={"user_id": event.entity_id, "closed": closed,
                                                           "reason": event.type})
