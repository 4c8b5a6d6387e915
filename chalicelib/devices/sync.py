"""Devices' consumer of identity events: a deleted user's ownerships are removed."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.devices.service import DeviceService
from chalicelib.observability import logger
from chalicelib.platform.consumer import PermanentError


class _UserEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    entity_id: str
    entity_version: int


def apply(service: DeviceService, body: str) -> None:
    """Handle one identity event; only `user.deleted` concerns devices. Idempotent."""
    try:
        event = _UserEvent.model_validate(json.loads(body))
    except (ValueError, ValidationError) as exc:
        raise PermanentError(f"not an identity event: {exc}") from exc
    if not event.type.startswith("user."):
        raise PermanentError(f"unknown event type {event.type!r}")
    if event.type == "user.deleted":
        removed = service.forget_user(event.entity_id)
        logger.info("ownerships of a deleted user removed", extra={"user_id": event.entity_id, "removed": removed})
