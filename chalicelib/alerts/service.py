"""Alerts' use cases: deliver a raised alert to its owners and the admins, list, acknowledge."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

from chalicelib import errors
from chalicelib.alerts import inbox
from chalicelib.alerts.inbox import AlertOut, AlertPage
from chalicelib.http import Principal
from chalicelib.observability import logger
from chalicelib.realtime.push import Pusher


class AlertService:
    """`owners_of` and `device_exists` are monitoring's public queries, injected."""

    def __init__(self, pusher: Pusher, owners_of: Callable[[str], frozenset[str]],
                 device_exists: Callable[[str], bool]) -> None:
        self._pusher = pusher
        self._owners_of = owners_of
        self._device_exists = device_exists

    def deliver(self, alert: dict[str, Any]) -> int:
        """Store the alert in each owner's inbox and the admins' feed, then push it live.

        A redelivered event stores nothing twice and pushes only to whoever it did not reach
        before (a push that failed midway is completed; one that succeeded is not repeated).
        """
        alert_id = alert["id"]
        owners = self._owners_of(alert["device_id"])
        pending = [u for u in sorted(owners) if inbox.store(u, alert) or inbox.unpushed(u, alert_id)]
        feed_pending = inbox.store(inbox.ADMIN_FEED, alert) or inbox.unpushed(inbox.ADMIN_FEED, alert_id)
        frame = {"type": "alert", "alert": {**alert, "acknowledged_at": None}}
        pushed = self._pusher.to_users(pending, frame, admins=feed_pending)
        for user_id in pending + ([inbox.ADMIN_FEED] if feed_pending else []):
            inbox.mark_pushed(user_id, alert_id)
        logger.info("alert delivered", extra={"alert_id": alert_id, "owners": len(owners),
                                              "pending_inboxes": len(pending), "pushed": pushed})
        return pushed

    def list_for(self, principal: Principal, limit: int, cursor: str | None, unacknowledged: bool) -> AlertPage:
        alerts = inbox.list_for(principal.user_id, principal.is_admin)
        exists: dict[str, bool] = {}
        visible = []
        for alert in alerts:
            if alert.device_id not in exists:
                exists[alert.device_id] = self._device_exists(alert.device_id)
            if exists[alert.device_id] and not (unacknowledged and alert.acknowledged_at):
                visible.append(alert)
        start = _offset(cursor)
        page = visible[start:start + limit]
        more = start + limit < len(visible)
        return AlertPage(items=page, next_cursor=_cursor(start + limit) if more else None)

    def acknowledge(self, principal: Principal, alert_id: str) -> AlertOut:
        alert = inbox.acknowledge(principal.user_id, alert_id, principal.is_admin, dt.datetime.now(dt.UTC))
        if alert is None:
            raise errors.NotFoundError("No such alert.")
        return alert


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if not text.startswith("o:"):
            raise ValueError(text)
        return max(int(text[2:]), 0)
    except ValueError as exc:
        raise errors.ValidationError("The cursor is not valid.",
                                     [errors.FieldError("cursor", "not a cursor from this list")]) from exc
