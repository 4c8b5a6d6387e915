"""What the AI may know when answering a user: that user's own devices and recent use, nothing else."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from chalicelib.monitoring.history import Metered, schedule_of


class Meter(Metered, Protocol):
    """What the chat may tell of a meter: what the history needs, and its name."""

    @property
    def name(self) -> str: ...


class Hour(Protocol):
    @property
    def start(self) -> str: ...
    @property
    def kwh(self) -> float | None: ...


class DayView(Protocol):
    """A day of a meter's use (monitoring's day view fits)."""

    @property
    def hours(self) -> Sequence[Hour]: ...
    @property
    def total_kwh(self) -> float: ...
    @property
    def peak_hour(self) -> str | None: ...
    @property
    def cost(self) -> float | None: ...
    @property
    def currency(self) -> str | None: ...


MeterT = TypeVar("MeterT", bound=Meter)


def describe(devices: Sequence[MeterT], day_view: Callable[[MeterT, dt.date], DayView], now: dt.datetime) -> str:
    """A short plain-text summary of the user's devices, today and yesterday."""
    if not devices:
        return "The user has no meters assigned."
    lines = []
    for device in devices[:10]:
        today = now.astimezone(ZoneInfo(device.timezone)).date()
        parts = [(f"Meter '{device.name}' (id {device.id}), time zone {device.timezone}, "
                 f"hourly limit {device.max_hourly_kwh} kWh")]
        price = schedule_of(device).price_at(now)
        if price is not None:
            time_of_use = " (prices change with the time of day or the date)" if device.tariffs else ""
            parts.append(f"price now {_money(price.per_kwh, price.currency)} per kWh{time_of_use}")
        for label, day in (("today", today), ("yesterday", today - dt.timedelta(days=1))):
            view = day_view(device, day)
            over = [h.start for h in view.hours if h.kwh is not None and h.kwh > device.max_hourly_kwh]
            cost = f", cost {_money(view.cost, view.currency)}" if view.cost is not None else ""
            parts.append(f"{label}: {view.total_kwh} kWh{cost}, peak hour {view.peak_hour or 'none'}, "
                         f"{len(over)} hour(s) over the limit")
        lines.append("; ".join(parts))
    return "\n".join(lines)


def _money(amount: object, currency: str | None) -> str:
    """An amount and its currency, when it has one."""
    return f"{amount} {currency}" if currency else str(amount)
