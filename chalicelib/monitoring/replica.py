"""Monitoring's replica of each device (limit, time zone, tariff, owners), fed by device events.

Applying an event is idempotent and order-safe: the item is written only if it holds an
older version (a conditional write), so a replayed or late event never overwrites newer
state. A deleted device leaves a tombstone with its version, so that a late `created` or
`updated` cannot bring it back.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.update import Action
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection

from chalicelib import names
from chalicelib.messages import InvalidMessage, SyncEvent, parse_event
from chalicelib.monitoring.domain import HourTotals, Meter, RaisedAlerts
from chalicelib.observability import logger
from chalicelib.platform.conditions import applied
from chalicelib.platform.consumer import Source
from chalicelib.platform.pagination import bad_cursor, by_name, decode_cursor, encode_cursor
from chalicelib.platform.persistence import Item, bring_up, transaction
from chalicelib.tariffs import Schedule, Tariff, Tariffs

_STATUS = ["name", "max_hourly_kwh", "timezone", "never", "silenced", "over_hour"]


class _FleetIndex(GlobalSecondaryIndex["MeterItem"]):
    class Meta:
        projection = IncludeProjection(_STATUS)

    name_key = UnicodeAttribute(range_key=True)


class _ByName(_FleetIndex):
    """Every live meter by name (sparse: `listing` is set while the device exists)."""

    class Meta(_FleetIndex.Meta):
        index_name = "by_name"

    listing = UnicodeAttribute(hash_key=True)


class _NeverReported(_FleetIndex):
    """Meters that never sent a reading, by name (sparse on `never`)."""

    class Meta(_FleetIndex.Meta):
        index_name = "never_reported"

    never = UnicodeAttribute(hash_key=True)


class _Silent(_FleetIndex):
    """Meters whose silence was raised and that have not reported since, by name (sparse)."""

    class Meta(_FleetIndex.Meta):
        index_name = "silent"

    silenced = UnicodeAttribute(hash_key=True)


class _OverLimit(_FleetIndex):
    """Meters by the last hour whose total went over their limit, then by name (sparse)."""

    class Meta(_FleetIndex.Meta):
        index_name = "over_limit"

    over_hour = UnicodeAttribute(hash_key=True)


class MeterItem(Item):
    class Meta:
        table_name = names.resource_name("meters")

    device_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(default="")
    max_hourly_kwh = NumberAttribute(default=0)
    timezone = UnicodeAttribute(default="UTC")
    tariff_per_kwh = NumberAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    tariffs = UnicodeAttribute(null=True)  # JSON as the device events carry them; absent: none
    reading_kind = UnicodeAttribute(null=True)  # "register", or absent: "interval" (as items kept before)
    register_max_kwh = NumberAttribute(null=True)
    register_rev = NumberAttribute(null=True)  # bumped by each write of a register device's hours (totals.py)
    owner_ids = UnicodeSetAttribute(default=set)
    entity_version = NumberAttribute(null=True)
    deleted = BooleanAttribute(default=False)
    # The fleet's status, kept by the paths that change it: the events (listing, name), ingestion
    # (a first reading ends `never` and `silenced`; a crossing sets `over_hour`), the silent check.
    listing = UnicodeAttribute(null=True)  # LISTED while the device exists
    name_key = UnicodeAttribute(null=True)  # lower-case name, then the id: the fleet's order
    never = UnicodeAttribute(null=True)  # FLAG until the first reading
    silenced = UnicodeAttribute(null=True)  # FLAG from a raised silence to the next reading
    over_hour = UnicodeAttribute(null=True)  # the latest hour that went over the limit
    devices = NumberAttribute(null=True)  # on the FLEET item only: how many devices exist
    by_name = _ByName()
    never_reported = _NeverReported()
    silent = _Silent()
    over_limit = _OverLimit()


LISTED = "all"
FLAG = "1"
FLEET = "#fleet"  # the item that counts the fleet (no device id starts with #)


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
    tariffs: Tariffs = Field(default_factory=list)  # events from before tariffs carry none
    reading_kind: Literal["interval", "register"] = "interval"  # events from before it carry none
    register_max_kwh: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    owner_ids: list[str]


_TARIFFS = TypeAdapter(list[Tariff])


def _tariffs_of(item: MeterItem) -> tuple[Tariff, ...]:
    return tuple(_TARIFFS.validate_json(item.tariffs)) if item.tariffs else ()


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
                 item.currency, frozenset(item.owner_ids or ()), never_reported=item.never is not None,
                 silenced=item.silenced is not None, tariffs=_tariffs_of(item),
                 reading_kind=item.reading_kind or "interval",
                 register_max_kwh=None if item.register_max_kwh is None else float(item.register_max_kwh))


class DynamoMeterStatus:
    """The MeterStatus port on the replica's items; a deleted or unknown meter is left alone."""

    def reported(self, device_id: str) -> None:
        applied(lambda: MeterItem(device_id).update(actions=[MeterItem.never.remove(), MeterItem.silenced.remove()],
                                                    condition=MeterItem.listing.exists()))

    def went_over(self, device_id: str, hour: str) -> None:
        applied(lambda: MeterItem(device_id).update(
            actions=[MeterItem.over_hour.set(hour)],
            condition=MeterItem.listing.exists() & (MeterItem.over_hour.does_not_exist() | (MeterItem.over_hour < hour))))

    def silenced(self, device_id: str) -> None:
        applied(lambda: MeterItem(device_id).update(actions=[MeterItem.silenced.set(FLAG)],
                                                    condition=MeterItem.listing.exists()))


def owners_of(device_id: str) -> frozenset[str]:
    """The owners monitoring knows for a device (none for an unknown or deleted one)."""
    meter = get(device_id)
    return meter.owner_ids if meter else frozenset()


def exists(device_id: str) -> bool:
    return get(device_id) is not None


def has_reported(device_id: str) -> bool:
    """Whether the device sent a reading yet, as far as monitoring knows (an unknown one has not)."""
    try:
        item = MeterItem.get(device_id, consistent_read=True, attributes_to_get=["device_id", "never", "deleted"])
    except DoesNotExist:
        return False
    return not item.deleted and item.never is None


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class _Write:
    """One event's write over the meter as it was read: its update, the condition that the meter
    is still as read, and how the fleet's count moves (a device coming or going)."""

    device_id: str
    actions: list[Action]
    unchanged: Any
    count: int


def _state(event: SyncEvent) -> _DeviceState:
    """The device an event carries; InvalidMessage when it carries none (it can never be applied)."""
    try:
        state = _DeviceState.model_validate(event.data.get("device"))
    except ValidationError as exc:
        raise InvalidMessage(f"device event without a valid device: {exc}") from exc
    if state.id != event.entity_id:
        raise InvalidMessage("entity_id does not match the device in the event")
    return state


def _plan(state: _DeviceState, event: SyncEvent, current: MeterItem | None) -> _Write | None:
    """The write of the event over the meter as read (`current`); None when the event is older."""
    live = event.type != "device.deleted"
    known = None if current is None else int(current.entity_version or 0)
    redelivered_deletion = (not live and current is not None and current.deleted
                            and known == event.entity_version)
    if known is not None and known >= event.entity_version and not redelivered_deletion:
        return None
    was_live = current is not None and not current.deleted
    item = MeterItem
    actions: list[Action] = [item.name.set(state.name), item.max_hourly_kwh.set(state.max_hourly_kwh),
               item.timezone.set(state.timezone), item.entity_version.set(event.entity_version),
               item.deleted.set(not live),
               item.tariff_per_kwh.set(state.tariff_per_kwh) if state.tariff_per_kwh is not None
               else item.tariff_per_kwh.remove(),
               item.currency.set(state.currency) if state.currency is not None else item.currency.remove(),
               item.tariffs.set(_TARIFFS.dump_json(state.tariffs, by_alias=True).decode()) if state.tariffs
               else item.tariffs.remove(),
               item.reading_kind.set(state.reading_kind) if state.reading_kind != "interval"
               else item.reading_kind.remove(),
               item.register_max_kwh.set(state.register_max_kwh) if state.register_max_kwh is not None
               else item.register_max_kwh.remove(),
               item.owner_ids.set(set(state.owner_ids)) if state.owner_ids else item.owner_ids.remove()]
    if live:
        actions += [item.listing.set(LISTED), item.name_key.set(by_name(state.name, state.id))]
        if not was_live:  # new, or made again over its tombstone: no history yet
            actions += [item.never.set(FLAG), item.silenced.remove(), item.over_hour.remove()]
    else:
        actions += [item.listing.remove(), item.name_key.remove(), item.never.remove(), item.silenced.remove(),
                    item.over_hour.remove()]
    unchanged = item.device_id.does_not_exist() if known is None else item.entity_version == known
    return _Write(state.id, actions, unchanged, 0 if was_live == live else (1 if live else -1))


def _commit(writes: Sequence[_Write]) -> bool:
    """These writes in one transaction, with the fleet's count moved by their sum; False when a
    meter changed since it was read (nothing is written then)."""
    moved = sum(write.count for write in writes)
    if not writes:
        return True

    def commit() -> None:
        with transaction() as tx:
            for write in writes:
                tx.update(MeterItem(write.device_id), actions=write.actions, condition=write.unchanged)
            if moved:
                tx.update(MeterItem(FLEET), actions=[MeterItem.devices.add(moved)])

    return applied(commit)


def _read(device_id: str) -> MeterItem | None:
    try:
        return MeterItem.get(device_id, consistent_read=True)
    except DoesNotExist:
        return None


def apply(event: SyncEvent, hours: HourTotals | None = None, alerts: RaisedAlerts | None = None) -> bool:
    """Apply one device event; False when it was older than the replica. A deletion also removes
    the device's hours and alerts (`hours` and `alerts`: DynamoDB unless given)."""
    state = _state(event)
    for _attempt in range(_MAX_ATTEMPTS):
        write = _plan(state, event, _read(state.id))
        if write is None or _commit([write]):
            break
    else:
        raise RuntimeError(f"the meter {state.id} kept changing under concurrent events; retrying later")
    if write is None:
        logger.info("older device event ignored", extra={"device_id": state.id, "entity_version": event.entity_version})
        return False
    if event.type == "device.deleted":
        _forget(state.id, event, hours, alerts)
    return True


def _forget(device_id: str, event: SyncEvent, hours: HourTotals | None, alerts: RaisedAlerts | None) -> None:
    """The device is gone from every view: its history and alerts go with it (idempotent, so a
    retry after a failure half-way finishes the job)."""
    from chalicelib.monitoring.alerts import DynamoRaisedAlerts
    from chalicelib.monitoring.totals import DynamoHourTotals

    removed = (hours or DynamoHourTotals()).delete_device(device_id)
    # The owners' and admins' copies belong to the alerts context, told on its queue.
    (alerts or DynamoRaisedAlerts()).delete_device(device_id, event.occurred_at or _now_iso())
    logger.info("deleted device's history removed", extra={"device_id": device_id, "hours": removed})


def apply_batch(events: Sequence[SyncEvent], hours: HourTotals | None = None,
                alerts: RaisedAlerts | None = None) -> list[Exception | None]:
    """Apply a batch of device events: the meters read in one request and, when each device comes
    once and creations or changes only (a burst of imported devices), written in one transaction
    with the fleet's count moved once. Anything else, or a meter that changed meanwhile, is applied
    event by event. For each event: None, or what failed it (InvalidMessage: never applicable)."""
    states: dict[int, _DeviceState] = {}
    outcome: list[Exception | None] = [None] * len(events)
    for n, event in enumerate(events):
        try:
            states[n] = _state(event)
        except InvalidMessage as exc:
            outcome[n] = exc
    ids = [state.id for state in states.values()]
    packed = (len(states) > 1 and len(set(ids)) == len(ids)
              and all(events[n].type != "device.deleted" for n in states))
    if packed:
        current = {item.device_id: item for item in MeterItem.batch_get(ids, consistent_read=True)}
        writes = {n: _plan(state, events[n], current.get(state.id)) for n, state in states.items()}
        if _commit([write for write in writes.values() if write is not None]):
            for n, write in writes.items():
                if write is None:
                    logger.info("older device event ignored", extra={"device_id": states[n].id,
                                                                     "entity_version": events[n].entity_version})
            return outcome
    for n in states:
        try:
            apply(events[n], hours, alerts)
        except Exception as exc:  # noqa: BLE001 - this event is retried (or dead-lettered), the others go on
            outcome[n] = exc
    return outcome


@dataclass(frozen=True)
class FleetMember:
    """A meter as the fleet's indexes hold it."""

    device_id: str
    name: str
    max_hourly_kwh: float
    timezone: str
    never: bool
    silenced: bool
    over_hour: str | None


_INDEX_OF = {"over_limit": MeterItem.over_limit, "silent": MeterItem.silent,
             "never_reported": MeterItem.never_reported, "reporting": MeterItem.by_name}
_HASH_OF = {"over_limit": "over_hour", "silent": "silenced", "never_reported": "never", "reporting": "listing"}


def _member(item: MeterItem) -> FleetMember:
    return FleetMember(item.device_id, item.name, float(item.max_hourly_kwh), item.timezone, item.never is not None,
                       item.silenced is not None, item.over_hour)


class DynamoFleetIndex:
    """The fleet's indexes on the replica: each state's meters by name, and the fleet's count.

    `over_limit` members are those whose latest crossing is in `hour`; `silent` ones exclude
    them, and `reporting` ones are every meter in no other state (filtered on the index)."""

    @staticmethod
    def _partition(state: str, hour: str) -> str:
        return {"over_limit": hour, "reporting": LISTED}.get(state, FLAG)

    @staticmethod
    def _others(state: str, hour: str) -> Any:
        not_over = MeterItem.over_hour.does_not_exist() | (MeterItem.over_hour != hour)
        if state == "silent":
            return not_over
        if state == "reporting":
            return not_over & MeterItem.never.does_not_exist() & MeterItem.silenced.does_not_exist()
        return None

    def devices(self) -> int:
        try:
            return int(MeterItem.get(FLEET, consistent_read=True, attributes_to_get=["devices"]).devices or 0)
        except DoesNotExist:
            return 0

    def members(self, state: str, hour: str, prefix: str | None, limit: int,
                cursor: str | None) -> tuple[list[FleetMember], str | None]:
        """A page of a state's meters by name (those whose name starts with `prefix`, without case)."""
        hash_name = _HASH_OF[state]
        partition = self._partition(state, hour)
        start = decode_cursor(cursor, {"device_id", hash_name, "name_key"})
        if start is not None and (start[hash_name]["S"] != partition
                                  or not start["name_key"]["S"].startswith((prefix or "").lower())):
            raise bad_cursor()
        results = _INDEX_OF[state].query(
            partition, MeterItem.name_key.startswith(prefix.lower()) if prefix else None,
            filter_condition=self._others(state, hour), limit=limit, page_size=limit, last_evaluated_key=start)
        found = [_member(i) for i in results]
        return found, encode_cursor(results.last_evaluated_key)

    def count(self, state: str, hour: str) -> int:
        """How many meters are in a state (reading what the state's index holds, keys only)."""
        return _INDEX_OF[state].count(self._partition(state, hour), filter_condition=self._others(state, hour))

    def prices(self, device_ids: Sequence[str]) -> dict[str, Schedule]:
        """Each listed meter's prices (the indexes do not hold tariffs), a hundred to a request."""
        if not device_ids:
            return {}
        wanted = ["device_id", "timezone", "tariff_per_kwh", "currency", "tariffs", "deleted"]
        return {item.device_id: Schedule(_tariffs_of(item), None if item.tariff_per_kwh is None
                                         else float(item.tariff_per_kwh), item.currency, item.timezone)
                for item in MeterItem.batch_get(list(dict.fromkeys(device_ids)), attributes_to_get=wanted)
                if not item.deleted}


def backfill_fleet(hours: HourTotals | None = None) -> int:
    """Give meters kept before the fleet view their status, and count the fleet anew when any was
    given one (or no count exists); how many meters were given one. A one-off maintenance step
    after an upgrade: it reads every meter (never on a request, consumer or schedule path), and
    does nothing to a meter that has its status already, so running it again is harmless."""
    from chalicelib.monitoring.totals import DynamoHourTotals

    hours = hours or DynamoHourTotals()
    def status(item: MeterItem) -> list[Action]:
        actions: list[Action] = [MeterItem.listing.set(LISTED), MeterItem.name_key.set(by_name(item.name, item.device_id))]
        return actions + ([MeterItem.never.set(FLAG)] if hours.latest(item.device_id) is None else [])

    given = bring_up(MeterItem, MeterItem.listing.does_not_exist() & (MeterItem.deleted == False)
                     & (MeterItem.device_id != FLEET), status,
                     lambda item: MeterItem.entity_version == item.entity_version)
    counted = DynamoFleetIndex().devices()
    if given or counted == 0:
        devices = MeterItem.by_name.count(LISTED)
        MeterItem(FLEET).update(actions=[MeterItem.devices.set(devices)])
        logger.info("fleet status given to meters kept before it", extra={"meters": given, "devices": devices})
    return given
