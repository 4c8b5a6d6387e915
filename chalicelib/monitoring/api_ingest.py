"""Readings over HTTP, for meters without AWS credentials: validated, then queued like the rest."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from chalicelib import errors
from chalicelib.messages import ReadingBatch
from chalicelib.monitoring import replica
from chalicelib.monitoring.readings import AboveMaximumError, InvalidReadingError, Limits, Reading, parse_reading
from chalicelib.platform import queues
from chalicelib.settings import get_settings


class ReadingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    readings: list[Any] = Field(min_length=1, max_length=100)


class Rejected(BaseModel):
    index: int
    error: str


class ReadingsAccepted(BaseModel):
    accepted: int
    rejected: list[Rejected]


def accept(device_id: str, request: ReadingsRequest) -> ReadingsAccepted:
    """Queue every valid reading of the key's device as one batch message; report the others by index."""
    settings = get_settings()
    limits = Limits.at(dt.datetime.now(dt.UTC), settings.max_reading_kwh, settings.max_clock_skew_s)
    rejected: list[Rejected] = []
    readings: list[dict[str, Any]] = []
    kind: list[str] = []  # the device's reading kind, read once and only for a value above the maximum
    for index, raw in enumerate(request.readings):
        try:
            reading: Reading = parse_reading(raw if isinstance(raw, dict) else json.dumps(raw), limits)
        except AboveMaximumError as exc:
            if not kind:
                meter = replica.get(device_id)
                kind.append(meter.reading_kind if meter is not None else "interval")
            if exc.reading is None or kind[0] != "register":  # a register is not bound by an interval's maximum
                rejected.append(Rejected(index=index, error=str(exc)))
                continue
            reading = exc.reading
        except InvalidReadingError as exc:
            rejected.append(Rejected(index=index, error=str(exc)))
            continue
        if reading.device_id != device_id:
            rejected.append(Rejected(index=index, error="device_id does not match the API key's device"))
            continue
        readings.append({"timestamp": reading.key, "device_id": reading.device_id,
                         "measurement_value": float(reading.kwh)})
    if readings:
        try:
            queues.send("readings", ReadingBatch(readings=readings))
        except ClientError as exc:
            raise errors.DependencyUnavailableError("The readings queue refused the readings; send them again.") from exc
    return ReadingsAccepted(accepted=len(readings), rejected=rejected)
