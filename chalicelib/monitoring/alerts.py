"""Raised alerts (the `alerts` table): one per device and hour, stored once, announced at least once.

An alert is stored with a conditional put, so however many readings cross the limit, or
however often one is redelivered, the hour has one alert. `notified_at` is set once its
`alert.raised` message is on the notifications queue; until then any later delivery of a
reading of that hour sends it again (the alert id makes repeats harmless downstream).
"""

from __future__ import annotations

import datetime as dt

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib import names
from chalicelib.messages import Alert, AlertRaised, DeviceDeleted
from chalicelib.platform import queues
from chalicelib.platform.conditions import applied
from chalicelib.platform.persistence import Item, delete_all


class _ByDevice(GlobalSecondaryIndex["AlertItem"]):
    class Meta:
        index_name = "by_device"
        projection = AllProjection()

    device_id = UnicodeAttribute(hash_key=True)
    hour_start = UnicodeAttribute(range_key=True)


class AlertItem(Item):
    class Meta:
        table_name = names.resource_name("alerts")

    id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    device_id = UnicodeAttribute()
    device_name = UnicodeAttribute(default="")
    hour_start = UnicodeAttribute()
    total_kwh = NumberAttribute()
    max_hourly_kwh = NumberAttribute()
    created_at = UnicodeAttribute()
    notified_at = UnicodeAttribute(null=True)
    by_device = _ByDevice()


class DynamoRaisedAlerts:
    """The RaisedAlerts port on the `alerts` table; alerts are sent on the notifications queue."""

    def announce(self, alert: Alert, now: dt.datetime, *, fresh: bool = False) -> bool:
        # A repair on a repeated reading reads first, so that a repeat costs a read, not a refused write.
        stored = None if fresh else self._get(alert.id)
        if stored is None and not self._store_once(alert):
            stored = self._get(alert.id)  # stored by a concurrent consumer (or an earlier delivery) a moment ago
        if stored is not None:
            if stored[1]:
                return False
            alert = stored[0]
        # At least once: the alert id makes a repeat harmless downstream.
        queues.send("notifications", AlertRaised(alert=alert))
        AlertItem(alert.id).update(actions=[AlertItem.notified_at.set(now.isoformat())])
        return True

    def delete_device(self, device_id: str, deleted_at: str) -> None:
        delete_all(AlertItem, AlertItem.by_device.query(device_id, attributes_to_get=["id"]))
        queues.send("notifications", DeviceDeleted(device_id=device_id, deleted_at=deleted_at))

    @staticmethod
    def _store_once(alert: Alert) -> bool:
        """Store the alert unless one with its id exists; True if this call stored it."""
        return applied(lambda: AlertItem(**alert.model_dump()).save(condition=AlertItem.id.does_not_exist()))

    @staticmethod
    def _get(alert_id: str) -> tuple[Alert, bool] | None:
        """The stored alert and whether its message was sent."""
        try:
            item = AlertItem.get(alert_id, consistent_read=True)
        except DoesNotExist:
            return None
        return Alert.model_validate(item.attribute_values), item.notified_at is not None
