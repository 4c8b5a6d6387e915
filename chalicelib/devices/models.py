"""Devices' request and response shapes."""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from chalicelib.tariffs import Tariff as TimeOfUseTariff
from chalicelib.tariffs import Tariffs

DeviceId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Serial = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.:/-]{1,64}$")]
Currency = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _known_zone(name: str) -> str:
    if name not in _zones():
        raise ValueError("not an IANA time zone name (e.g. Europe/Bucharest)")
    return name


Timezone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64), AfterValidator(_known_zone)]
Limit = Annotated[float, Field(gt=0, le=1_000_000, allow_inf_nan=False)]
Tariff = Annotated[float, Field(ge=0, le=1_000, allow_inf_nan=False)]
ReadingKind = Literal["interval", "register"]
RegisterMax = Annotated[float, Field(gt=0, le=1_000_000_000, allow_inf_nan=False)]
READING_KIND_HELP = ("What a reading's `measurement_value` is: `interval`, the energy of the interval it ends (kWh); "
                     "`register`, the meter's cumulative register (kWh), whose differences are counted.")
REGISTER_MAX_HELP = ("A register device's largest value (kWh) before it rolls over to zero; only for `register` "
                     "devices.")
TARIFFS_HELP = ("Time-of-use tariffs by effective date (sorted by `from`); the flat `tariff_per_kwh` applies before "
                "the first and at every date when the list is empty.")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateDeviceRequest(Strict):
    id: DeviceId | None = Field(default=None, description="The meter's own id; a UUID is made when absent.")
    serial: Serial | None = Field(default=None, description="The meter's serial number, unique among devices.")
    name: Name
    description: Text = ""
    address: Text = ""
    max_hourly_kwh: Limit
    timezone: Timezone | None = None
    tariff_per_kwh: Tariff | None = None
    currency: Currency | None = None
    tariffs: Tariffs = Field(default_factory=list, description=TARIFFS_HELP)
    reading_kind: ReadingKind = Field(default="interval", description=READING_KIND_HELP)
    register_max_kwh: RegisterMax | None = Field(default=None, description=REGISTER_MAX_HELP)
    owner_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )


class UpdateDeviceRequest(Strict):
    name: Name | None = None
    serial: Serial | None = Field(default=None, description="null removes it.")
    description: Text | None = None
    address: Text | None = None
    max_hourly_kwh: Limit | None = None
    timezone: Timezone | None = None
    tariff_per_kwh: Tariff | None = None
    currency: Currency | None = None
    tariffs: Tariffs | None = Field(default=None,
                                    description="The whole list, replacing the one kept; [] or null empties it.")
    reading_kind: ReadingKind | None = Field(default=None, description=READING_KIND_HELP)
    register_max_kwh: RegisterMax | None = Field(default=None, description=REGISTER_MAX_HELP + " null removes it.")


class ListDevicesQuery(Strict):
    limit: int = Field(default=100, ge=1, le=500)
    cursor: str | None = None
    q: str | None = Field(default=None, min_length=1, max_length=64, description="A name prefix, without case.")


class DeviceOut(BaseModel):
    id: str
    serial: str | None = None
    name: str
    description: str
    address: str
    max_hourly_kwh: float
    timezone: str
    tariff_per_kwh: float | None
    currency: str | None
    tariffs: list[TimeOfUseTariff] = Field(default_factory=list)
    reading_kind: ReadingKind = "interval"
    register_max_kwh: float | None = None
    owner_ids: list[str]
    created_at: str


class DevicePage(BaseModel):
    items: list[DeviceOut]
    next_cursor: str | None


class ApiKeyCreated(BaseModel):
    key_id: str
    api_key: str = Field(description="Shown once; send it as X-Api-Key.")


class ApiKeyOut(BaseModel):
    key_id: str
    device_id: str
    created_at: str


class ApiKeyPage(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None = None


class RowProblem(BaseModel):
    field: str
    message: str


class ImportedRow(BaseModel):
    row: int = Field(description="The data row's number in the file, from 1 (the header is not counted).")
    serial: str
    device_id: str


class RejectedRow(BaseModel):
    row: int
    serial: str | None
    problems: list[RowProblem]


class ImportResult(BaseModel):
    created: list[ImportedRow]
    updated: list[ImportedRow]
    unchanged: list[ImportedRow] = Field(description="Rows that match their device as it is: nothing written.")
    rejected: list[RejectedRow] = Field(description="Rows that changed nothing, each with its reasons.")
