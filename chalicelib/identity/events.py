"""Identity's events as other contexts read them (the shared envelope of `chalicelib.messages`)."""

from __future__ import annotations

from chalicelib.messages import SyncEvent, parse_event

USER_EVENTS = frozenset({"user.created", "user.updated", "user.deleted", "user.sessions_revoked"})


def parse(body: str) -> SyncEvent:
    """A `user.*` event from an SQS body; anything else can never be handled (InvalidMessage)."""
    return parse_event(body, USER_EVENTS, "an identity event")
