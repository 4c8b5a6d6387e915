"""Simulator settings: a JSON file (see demo.json) with command-line flags laid over it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulator.patterns import DEFAULT_NOISE
from simulator.sender import MAX_READINGS_PER_MESSAGE

DEMO_CONFIG = Path(__file__).resolve().parent / "demo.json"
DEVICE_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"  # what the backend accepts
STAGE_PATTERN = r"^[a-z][a-z0-9-]{0,15}$"
Source = Literal["synthetic", "csv"]


class ConfigError(ValueError):
    """The settings are invalid; the text says which and why."""


def _check_zone(value: str | None) -> str | None:
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name, e.g. Europe/Bucharest)") from None
    return value


class DeviceConfig(BaseModel):
    """One simulated meter; unset fields take the file's top-level value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=DEVICE_ID_PATTERN)
    base_load_kwh: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    source: Source | None = None
    csv: Path | None = None
    cumulative: bool | None = None
    registers: bool | None = None
    seed: int | str | None = None
    noise: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    timezone: str | None = None

    zone_is_known = field_validator("timezone")(_check_zone)


class SimulatorConfig(BaseModel):
    """The whole run: devices, their defaults, time and the queue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    devices: list[DeviceConfig] = Field(default_factory=list)
    base_load_kwh: float = Field(default=0.1, ge=0, allow_inf_nan=False)
    source: Source = "synthetic"
    csv: Path | None = None
    cumulative: bool = False
    registers: bool = False  # send a running register, for a device with reading_kind "register"
    seed: int | str | None = None
    noise: float = Field(default=DEFAULT_NOISE, ge=0, le=2, allow_inf_nan=False)
    timezone: str = "UTC"
    interval_minutes: int = Field(default=10, ge=1, le=1440)
    speed: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    max_queue_depth: int = Field(default=1000, ge=0)
    readings_per_message: int = Field(default=100, ge=1, le=MAX_READINGS_PER_MESSAGE)
    queue: str = "readings"
    queue_name: str | None = None
    queue_url: str | None = None
    stage: str | None = Field(default=None, pattern=STAGE_PATTERN)
    endpoint_url: str | None = None
    region: str | None = None

    zone_is_known = field_validator("timezone")(_check_zone)

    def device_value(self, device: DeviceConfig, name: str) -> Any:
        """A device's own setting, else the file's."""
        own = getattr(device, name)
        return getattr(self, name) if own is None else own

    def resolved_stage(self) -> str:
        return self.stage or os.environ.get("EMS_STAGE") or "local"

    def resolved_queue_name(self) -> str:
        return self.queue_name or f"ems-{self.resolved_stage()}-{self.queue}"

    def resolved_endpoint_url(self) -> str | None:
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None

    def resolved_region(self) -> str:
        return self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def read_config_file(path: Path) -> dict[str, Any]:
    """The raw settings of a JSON file; relative CSV paths become relative to the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    base = path.resolve().parent
    for holder in [data, *(d for d in data.get("devices") or [] if isinstance(d, dict))]:
        if isinstance(holder.get("csv"), str) and not Path(holder["csv"]).is_absolute():
            holder["csv"] = str(base / holder["csv"])
    return data


# Flags that set a device property: they win over the file's top-level value and every device's own.
DEVICE_FLAGS = ("base_load_kwh", "source", "csv", "cumulative", "registers", "noise", "timezone")
RUN_FLAGS = ("interval_minutes", "speed", "max_queue_depth", "readings_per_message", "endpoint_url", "region")


def build_config(raw: dict[str, Any], *, device_ids: list[str] | None = None, **flags: Any) -> SimulatorConfig:
    """The file's settings with the given flags laid over them (a flag left as None changes nothing)."""
    data = dict(raw)
    devices = [dict(device) if isinstance(device, dict) else device for device in data.get("devices") or []]
    if device_ids:
        known = {device.get("id"): device for device in devices if isinstance(device, dict)}
        devices = [known.get(device_id, {"id": device_id}) for device_id in dict.fromkeys(device_ids)]
    for name in DEVICE_FLAGS:
        if flags.get(name) is not None:
            data[name] = flags[name]
            for device in devices:
                if isinstance(device, dict):
                    device.pop(name, None)
    if flags.get("csv") is not None and flags.get("source") is None:
        data["source"] = "csv"
        for device in devices:
            if isinstance(device, dict):
                device.pop("source", None)
    if flags.get("seed") is not None:
        data["seed"] = flags["seed"]
        for device in devices:
            if isinstance(device, dict):
                device.pop("seed", None)
    for name in RUN_FLAGS:
        if flags.get(name) is not None:
            data[name] = flags[name]
    # The most specific way of naming the queue wins; a flag beats the file.
    if flags.get("stage") is not None:
        data["stage"] = flags["stage"]
        data.pop("queue_name", None)
        data.pop("queue_url", None)
    if flags.get("queue_name") is not None:
        data["queue_name"] = flags["queue_name"]
        data.pop("queue_url", None)
    if flags.get("queue_url") is not None:
        data["queue_url"] = flags["queue_url"]
    data["devices"] = devices
    try:
        config = SimulatorConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'config'}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(problems) from None
    if not config.devices:
        raise ConfigError("no devices: list them in the config file or give --device")
    duplicates = sorted({d.id for d in config.devices if [e.id for e in config.devices].count(d.id) > 1})
    if duplicates:
        raise ConfigError(f"devices listed twice: {', '.join(duplicates)}")
    return config
