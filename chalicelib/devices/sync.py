"""Devices' consumer of identity events: a deleted user's ownerships are removed."""

from __future__ import annotations

from chalicelib.devices.service import DeviceService
from chalicelib.messages import SyncEvent
from chalicelib.observability import logger


def apply(service: DeviceService, event: SyncEvent) -> None:
    """Handle one identity event; only `user.deleted` concerns devices. Idempotent."""
    if event.type == "user.deleted":
        removed = service.forget_user(event.entity_id)
        logger.info("ownerships of a deleted user removed", extra={"user_id": event.entity_id, "removed": removed})
