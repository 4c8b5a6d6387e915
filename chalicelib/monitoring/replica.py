"""Monitoring's replica of each device (limit, time zone, tariff, owners), fed by device events.

Applying an event is idempotent and order-safe: the item is written only if it holds an
older version (a conditional write), so a replayed or late event never overwrites newer
state. A deleted device leaves a tombstone with its version, so that a late `created` or
`updated` cannot bring it back.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from chalicelib import names
from chalicelib.messages import InvalidMessage, SyncEvent, parse_event
from chalicelib.monitoring.domain import HourTotals, Meter, RaisedAlerts
from chalicelib.observability import logger
from chalicelib.platform.conditions import applied
from chalicelib.platform.consumer import Source


class MeterItem(Model):
    class Meta:
        table_name = names.resource_name("meters")

    device_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(default="")
    max_hourly_kwh = NumberAttribute(default=0)
    timezone = UnicodeAttribute(default="UTC")
    tariff_per_kwh = NumberAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    owner_ids = UnicodeSetAttribute(default=set)
    entity_version = NumberAttribute()
    deleted = BooleanAttribute(default=False)


def _known_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError) as exc:
        raise ValueError("not an IANA time zone name") from exc
    return name


class _DeviceState(BaseModel):
    # As strict as the devices context's own checks: a value it would refuse (NaN, a limit of
    # zero, an unknown zone) is a malformed event, to be dead-lettered at once, not a write to
    # retry or a replica that breaks every later reading of the device.
    model_config = ConfigDict(extra="ignore")
    id: str
    name: str
    max_hourly_kwh: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    timezone: Annotated[str, AfterValidator(_known_zone)]
    tariff_per_kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    currency: str | None = None
    owner_ids: list[str]


DEVICE_EVENTS = frozenset({"device.created", "device.updated", "device.deleted", "device.owner_added",
                           "device.owner_removed"})


def parse(body: str) -> SyncEvent:
    """A device event from an SQS body; anything else can never be applied (InvalidMessage)."""
    return parse_event(body, DEVICE_EVENTS, "a device event")


SOURCE = Source("monitoring-sync", parse)


def get(device_id: str) -> Meter | None:
    try:
        item = MeterItem.get(device_id, consistent_read=True)
    except DoesNotExist:
        return None
    return meter_of(item)


def get_many(device_ids: Iterable[str]) -> dict[str, Meter | None]:
    """Each device's meter (None: unknown or deleted), read consistently, a hundred to a request."""
    found: dict[str, Meter | None] = dict.fromkeys(device_ids)
    if found:
        for item in MeterItem.batch_get(list(found), consistent_read=True):
            found[item.device_id] = meter_of(item)
    return found


def meter_of(item: MeterItem) -> Meter | None:
    """The meter an item holds; None for a deleted device's tombstone."""
    if item.deleted:
        return None
    return Meter(item.device_id, item.name, float(item.max_hourly_kwh), item.timezone,
                 None if item.tariff_per_kwh is None else float(item.tariff_per_kwh),
                 item.currency, frozenset(item.owner_ids or ()))


def owners_of(device_id: str) -> frozenset[str]:
    """The owners monitoring knows for a device (none for an unknown or deleted one)."""
    meter = get(device_id)
    return meter.owner_ids if meter else frozenset()


def exists(device_id: str) -> bool:
    return get(device_id) is not None


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def apply(event: SyncEvent, hours: HourTotals | None = None, alerts: RaisedAlerts | None = None) -> bool:
    """Apply one device event; False when it was older than the replica. A deletion also removes
    the device's hours and alerts (`hours` and `alerts`: DynamoDB unless given)."""
    try:
        state = _DeviceState.model_validate(event.data.get("device"))
    except ValidationError as exc:
        raise InvalidMessage(f"device event without a valid device: {exc}") from exc
    if state.id != event.entity_id:
        raise InvalidMessage("entity_id does not match the device in the event")
    item = MeterItem(
        state.id,
        name=state.name,
        max_hourly_kwh=state.max_hourly_kwh,
        timezone=state.timezone,
        tariff_per_kwh=state.tariff_per_kwh,
        currency=state.currency,
        owner_ids=set(state.owner_ids) or None,
        entity_version=event.entity_version,
        deleted=event.type == "device.deleted",
    )
    newer = MeterItem.device_id.does_not_exist() | (MeterItem.entity_version < event.entity_version)
    if item.deleted:
        # A redelivered deletion whose tombstone is in place goes on clearing: the history may not
        # have been removed the first time (the write and the clearing are two steps).
        newer = newer | ((MeterItem.entity_version == event.entity_version) & (MeterItem.deleted == True))
    if not applied(lambda: item.save(condition=newer)):
        logger.info("older device event ignored", extra={"device_id": state.id, "entity_version": event.entity_version})
        return False
    if item.deleted:
        # The device is gone from every view: its history and alerts go with it (idempotent, so a
        # retry after a failure half-way finishes the job).
        from chalicelib.monitoring.alerts import DynamoRaisedAlerts
        from chalicelib.monitoring.totals import DynamoHourTotals

        removed = (hours or DynamoHourTotals()).delete_device(state.id)
        # The owners' and admins' copies belong to the alerts context, told on its queue.
        (alerts or DynamoRaisedAlerts()).delete_device(state.id, event.occurred_at or _now_iso())
        logger.info("deleted device's history removed", extra={"device_id": state.id, "hours": removed})
    return True
