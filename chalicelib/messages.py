"""Every message a queue carries, typed in one place.

Each message names its `type` and `schema_version`. A consumer gets one of these models from
the pipeline (`chalicelib.platform.consumer`), never a raw body: a body that does not parse
into its queue's model raises `InvalidMessage`, whose text becomes the dead-letter reason.

- readings queue: a meter's reading `{timestamp, device_id, measurement_value}` (type
  `reading`, implied: meters send the assignment's format) or a batch `{"readings": [...]}`
  (type `readings`); each reading inside is judged by `chalicelib.monitoring.readings`.
- notifications queue: `alert.raised`, `readings.updated`, `device.deleted`.
- silent-checks queue: `silent.check` (one shard of the due silence deadlines, a page at a time).
- sync queues: the domain-event envelope (`SyncEvent`), published through a context's outbox.

A message without `schema_version` is version 1 (what was sent before versions were written).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from chalicelib.platform import jsontext

SCHEMA_VERSION = 1
_REASON = 300  # how much of a validation error goes into a dead-letter reason


class InvalidMessage(ValueError):
    """The message can never be handled; the text says why (it becomes the dead-letter reason)."""


def _reason(what: str, exc: Exception) -> InvalidMessage:
    return InvalidMessage(f"{what}: {str(exc)[:_REASON]}")


class Message(BaseModel):
    """A queue message: typed, versioned, sent as its JSON body."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1

    def body(self) -> str:
        """The message as a queue body (every field, `type` and `schema_version` included)."""
        return self.model_dump_json()


# --- readings queue ------------------------------------------------------------------------


class ReadingBatch(Message):
    """Many readings in one message; `chalicelib.monitoring.readings` judges each alone."""

    type: Literal["readings"] = "readings"
    readings: list[dict[str, Any]]


# --- the alert, as stored, sent and shown --------------------------------------------------


class Alert(BaseModel):
    """An alert of a device and hour (over consumption) or of a silence (silent meter)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str = Field(min_length=1)
    kind: Literal["over_consumption", "silent_meter"]
    device_id: str = Field(min_length=1)
    device_name: str
    hour_start: str
    total_kwh: float
    max_hourly_kwh: float
    created_at: str = Field(min_length=1)


# --- notifications queue -------------------------------------------------------------------


class AlertRaised(Message):
    """Sent at least once per alert; the alert id makes repeats harmless."""

    type: Literal["alert.raised"] = "alert.raised"
    alert: Alert


class ReadingUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    device_id: str
    hour_start: str
    kwh: float
    owner_ids: list[str] | None = None  # sent by ingestion; looked up when absent (older messages)


class ReadingsUpdated(Message):
    """The new totals of hours that changed, for the owners' live charts (best effort)."""

    type: Literal["readings.updated"] = "readings.updated"
    readings: list[ReadingUpdate]


class DeviceDeleted(Message):
    """A device's alerts raised before `deleted_at` are gone from every inbox."""

    type: Literal["device.deleted"] = "device.deleted"
    device_id: str = Field(min_length=1)
    deleted_at: str = Field(min_length=1)


Notification = Annotated[AlertRaised | ReadingsUpdated | DeviceDeleted, Field(discriminator="type")]
_NOTIFICATION: TypeAdapter[AlertRaised | ReadingsUpdated | DeviceDeleted] = TypeAdapter(Notification)


def parse_notification(body: str) -> AlertRaised | ReadingsUpdated | DeviceDeleted:
    data = _json(body)
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in ("alert.raised", "readings.updated", "device.deleted"):
        raise InvalidMessage(f"unknown notification type {kind!r}")
    try:
        return _NOTIFICATION.validate_python(data)
    except PydanticValidationError as exc:
        raise _reason(f"an invalid {kind} message", exc) from exc


# --- silent-checks queue -------------------------------------------------------------------


class SilentCheck(Message):
    """Look at one shard of the silence deadlines due by `until`, from `cursor` on (a page at a
    time; the rest goes on in a message of its own)."""

    type: Literal["silent.check"] = "silent.check"
    shard: int = Field(ge=0)
    until: str = Field(min_length=1)
    cursor: str | None = None


def parse_silent_check(body: str) -> SilentCheck:
    try:
        return SilentCheck.model_validate(_json(body))
    except PydanticValidationError as exc:
        raise _reason("an invalid silent.check message", exc) from exc


# --- sync queues ---------------------------------------------------------------------------


class SyncEvent(Message):
    """A domain event's envelope, as a context's outbox publishes it and the sync consumers read
    it: `{type, event_id, schema_version, entity_id, entity_version, occurred_at, data}`;
    `entity_version` orders the changes of one entity. Made by `chalicelib.platform.outbox.entry`."""

    type: str
    schema_version: int = SCHEMA_VERSION  # type: ignore[assignment]  # checked by parse_event
    event_id: str
    entity_id: str
    entity_version: int
    occurred_at: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


def parse_event(body: str, types: frozenset[str], what: str) -> SyncEvent:
    """An event of one of `types` (the ones a consumer handles, `what` names them); anything else is
    invalid."""
    try:
        event = SyncEvent.model_validate(_json(body))
    except (InvalidMessage, PydanticValidationError) as exc:
        raise _reason(f"not {what}", exc) from exc
    if event.type not in types:
        raise InvalidMessage(f"unknown event type {event.type!r}")
    if event.schema_version != SCHEMA_VERSION:
        raise InvalidMessage(f"unsupported schema_version {event.schema_version}")
    return event


def _json(body: str) -> Any:
    try:
        return jsontext.loads(body)
    except ValueError as exc:
        raise InvalidMessage(f"not JSON: {str(exc)[:_REASON]}") from exc
