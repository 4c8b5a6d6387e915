"""Raised alerts (the `alerts` table): one per device and hour, stored once, announced at least once.

An alert is stored with a conditional put, so however many readings cross the limit, or
however often one is redelivered, the hour has one alert. `notified_at` is set once its
`alert.raised` message is on the notifications queue; until then any later delivery of a
reading of that hour sends it again (the alert id makes repeats harmless downstream).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib import names
from chalicelib.messages import Alert, AlertRaised, DeviceDeleted
from chalicelib.platform import queues
from chalicelib.platform.conditions import applied
from chalicelib.platform.persistence import delete_all


def over_consumption(device_id: str, device_name: str, hour: str, total: Decimal, limit: float,
                     now: dt.datetime) -> Alert:
    return Alert(
        id=f"{device_id}:{hour}", kind="over_consumption", device_id=device_id, device_name=device_name,
        hour_start=hour, total_kwh=round(float(total), 6), max_hourly_kwh=limit,
        created_at=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
    )


class _ByDevice(GlobalSecondaryIndex["AlertItem"]):
    class Meta:
        index_name = "by_device"
        projection = AllProjection()

    device_id = UnicodeAttribute(hash_key=True)
    hour_start = UnicodeAttribute(range_key=True)


class AlertItem(Model):
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


def store_once(alert: Alert) -> bool:
    """Store the alert unless one with its id exists; True if this call stored it."""
    return applied(lambda: AlertItem(**alert.model_dump()).save(condition=AlertItem.id.does_not_exist()))


def get(alert_id: str) -> tuple[Alert, bool] | None:
    """The stored alert and whether its message was sent."""
    try:
        item = AlertItem.get(alert_id, consistent_read=True)
    except DoesNotExist:
        return None
    return Alert.model_validate(item.attribute_values), item.notified_at is not None


def mark_notified(alert_id: str, now: dt.datetime) -> None:
    AlertItem(alert_id).update(actions=[AlertItem.notified_at.set(now.isoformat())])


def send(alert: Alert) -> None:
    """Put `alert.raised` on the notifications queue (at least once; the id dedupes)."""
    queues.send("notifications", AlertRaised(alert=alert))


def send_device_deleted(device_id: str, deleted_at: str) -> None:
    """Tell the inboxes that a device's alerts raised before `deleted_at` are gone (at least once)."""
    queues.send("notifications", DeviceDeleted(device_id=device_id, deleted_at=deleted_at))


def announce(alert: Alert, now: dt.datetime, *, fresh: bool = False) -> bool:
    """Store the alert once and make sure its message is sent (repairs an earlier failed send).

    `fresh`: the caller's own write just crossed the limit, so the alert is most likely new and is
    stored at once; otherwise (a repair on a repeated reading) it is read first, so that a repeat
    costs a read, not a refused write. True when this call sent the message.
    """
    stored = None if fresh else get(alert.id)
    if stored is None and not store_once(alert):
        stored = get(alert.id)  # stored by a concurrent consumer (or an earlier delivery) a moment ago
    if stored is not None:
        if stored[1]:
            return False
        alert = stored[0]
    send(alert)
    mark_notified(alert.id, now)
    return True


def delete_device(device_id: str) -> None:
    """Remove the stored alerts of a deleted device."""
    delete_all(AlertItem, AlertItem.by_device.query(device_id, attributes_to_get=["id"]))
