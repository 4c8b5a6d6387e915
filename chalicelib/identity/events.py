"""Identity's events as other contexts read them (the shared envelope, user fields only)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.platform import jsontext
from chalicelib.platform.consumer import PermanentError


class UserEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    entity_id: str
    entity_version: int


def parse(body: str) -> UserEvent:
    """A `user.*` event from an SQS body; anything else can never be handled (PermanentError)."""
    try:
        event = UserEvent.model_validate(jsontext.loads(body))
    except (ValueError, ValidationError) as exc:
        raise PermanentError(f"not an identity event: {exc}") from exc
    if not event.type.startswith("user."):
        raise PermanentError(f"unknown event type {event.type!r}")
    return event
