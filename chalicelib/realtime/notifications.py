"""The notifications consumer: alerts to inboxes and sockets, reading totals to live charts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.alerts.service import AlertService
from chalicelib.platform import jsontext
from chalicelib.platform.consumer import PermanentError
from chalicelib.realtime.push import Pusher


class _Alert(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    device_id: str
    hour_start: str
    created_at: str


class _DeviceDeleted(BaseModel):
    device_id: str = Field(min_length=1)
    deleted_at: str = Field(min_length=1)


class _ReadingUpdate(BaseModel):
    device_id: str
    hour_start: str
    kwh: float
    owner_ids: list[str] | None = None  # sent by ingestion; looked up when absent (older messages)


class NotificationHandler:
    def __init__(self, alerts: AlertService, pusher: Pusher, owners_of: Callable[[str], frozenset[str]]) -> None:
        self._alerts = alerts
        self._pusher = pusher
        self._owners_of = owners_of

    def __call__(self, record: SQSRecord) -> None:
        try:
            message = jsontext.loads(record.body)
        except ValueError as exc:
            raise PermanentError(f"not JSON: {exc}") from exc
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "alert.raised":
            try:
                alert = _Alert.model_validate(message.get("alert"))
            except ValidationError as exc:
                raise PermanentError(f"alert.raised without a valid alert: {exc}") from exc
            self._alerts.deliver(alert.model_dump())
        elif kind == "readings.updated":
            try:
                updates = [_ReadingUpdate.model_validate(u) for u in message.get("readings") or []]
            except ValidationError as exc:
                raise PermanentError(f"readings.updated with an invalid entry: {exc}") from exc
            self._push_readings(updates)
        elif kind == "device.deleted":
            try:
                deleted = _DeviceDeleted.model_validate(message)
            except ValidationError as exc:
                raise PermanentError(f"device.deleted without a device and time: {exc}") from exc
            self._alerts.forget_device(deleted.device_id, deleted.deleted_at)
        else:
            raise PermanentError(f"unknown notification type {kind!r}")

    def _push_readings(self, updates: list[_ReadingUpdate]) -> None:
        """Each update to its owners' sockets; each owner's connections are looked up once."""
        owners = {u.device_id: frozenset(u.owner_ids) if u.owner_ids is not None else self._owners_of(u.device_id)
                  for u in updates}
        sockets = self._pusher.connections_of(set().union(*owners.values()))
        for update in updates:
            frame: dict[str, Any] = {"type": "reading", **update.model_dump(exclude={"owner_ids"})}
            self._pusher.to_connections([c for user in owners[update.device_id] for c in sockets.get(user, [])], frame)
