"""Alerts' use cases: deliver a raised alert to its owners and the admins, list, acknowledge."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from chalicelib import errors
from chalicelib.alerts.domain import ADMIN_FEED, Inbox
from chalicelib.alerts.models import AlertOut, AlertPage
from chalicelib.errors import Principal
from chalicelib.messages import Alert
from chalicelib.observability import logger
from chalicelib.platform.websocket import UserPush


class AlertService:
    """`owners_of` and `device_exists` are monitoring's public queries, injected. The inbox is a
    port (DynamoDB unless given)."""

    def __init__(self, pusher: UserPush, owners_of: Callable[[str], frozenset[str]],
                 device_exists: Callable[[str], bool], inbox: Inbox | None = None) -> None:
        from chalicelib.alerts.inbox import DynamoInbox

        self._inbox: Inbox = inbox or DynamoInbox()
        self._pusher = pusher
        self._owners_of = owners_of
        self._device_exists = device_exists

    def deliver(self, alert: Alert) -> int:
        """Store the alert in each owner's inbox and the admins' feed, then push it live.

        A redelivered event stores nothing twice and pushes only to whoever it did not reach
        before (a push that failed midway is completed; one that succeeded is not repeated).
        """
        alert_id = alert.id
        owners = self._owners_of(alert.device_id)
        inbox = self._inbox
        pending = [u for u in sorted(owners) if inbox.store(u, alert) or inbox.unpushed(u, alert_id)]
        feed_pending = inbox.store(ADMIN_FEED, alert) or inbox.unpushed(ADMIN_FEED, alert_id)
        frame = {"type": "alert", "alert": {**alert.model_dump(), "acknowledged_at": None}}
        pushed = self._pusher.to_users(pending, frame, admins=feed_pending)
        for user_id in pending + ([ADMIN_FEED] if feed_pending else []):
            inbox.mark_pushed(user_id, alert_id)
        logger.info("alert delivered", extra={"alert_id": alert_id, "owners": len(owners),
                                              "pending_inboxes": len(pending), "pushed": pushed})
        return pushed

    def list_for(self, principal: Principal, limit: int, cursor: str | None, unacknowledged: bool) -> AlertPage:
        """A page of the caller's alerts (unacknowledged first, newest first in each group). Alerts
        of a device deleted a moment ago are left out until their copies are removed."""
        alerts, next_cursor = self._inbox.list_page(principal.user_id, principal.is_admin, limit, cursor,
                                                    unacknowledged)
        exists = {device_id: self._device_exists(device_id) for device_id in {a.device_id for a in alerts}}
        return AlertPage(items=[a for a in alerts if exists[a.device_id]], next_cursor=next_cursor)

    def forget_device(self, device_id: str, deleted_at: str) -> int:
        """A device was deleted: remove every copy of its alerts raised before its deletion."""
        removed = self._inbox.delete_device(device_id, deleted_at)
        logger.info("deleted device's alerts removed from inboxes", extra={"device_id": device_id, "copies": removed})
        return removed

    def open_by_device(self) -> dict[str, int]:
        """The fleet's open alerts: the feed's that no admin acknowledged yet, by device."""
        return self._inbox.open_by_device()

    def acknowledge(self, principal: Principal, alert_id: str) -> AlertOut:
        alert = self._inbox.acknowledge(principal.user_id, alert_id, principal.is_admin, dt.datetime.now(dt.UTC))
        if alert is None:
            raise errors.NotFoundError("No such alert.")
        return alert

