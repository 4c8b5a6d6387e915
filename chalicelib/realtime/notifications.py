"""The notifications consumer: alerts to inboxes and sockets, reading totals to live charts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.alerts.service import AlertService
from chalicelib.messages import AlertRaised, DeviceDeleted, ReadingsUpdated, ReadingUpdate, parse_notification
from chalicelib.platform.consumer import Source
from chalicelib.realtime.push import Pusher

SOURCE = Source("notifications", parse_notification)


class NotificationHandler:
    def __init__(self, alerts: AlertService, pusher: Pusher, owners_of: Callable[[str], frozenset[str]]) -> None:
        self._alerts = alerts
        self._pusher = pusher
        self._owners_of = owners_of

    def __call__(self, message: AlertRaised | ReadingsUpdated | DeviceDeleted) -> None:
        if isinstance(message, AlertRaised):
            self._alerts.deliver(message.alert)
        elif isinstance(message, ReadingsUpdated):
            self._push_readings(message.readings)
        else:
            self._alerts.forget_device(message.device_id, message.deleted_at)

    def _push_readings(self, updates: list[ReadingUpdate]) -> None:
        """Each update to its owners' sockets; each owner's connections are looked up once."""
        owners = {u.device_id: frozenset(u.owner_ids) if u.owner_ids is not None else self._owners_of(u.device_id)
                  for u in updates}
        sockets = self._pusher.connections_of(set().union(*owners.values()))
        for update in updates:
            frame: dict[str, Any] = {"type": "reading", **update.model_dump(exclude={"owner_ids"})}
            self._pusher.to_connections([c for user in owners[update.device_id] for c in sockets.get(user, [])], frame)
