"""Time-of-use tariffs with effective dates: the contract and the pure rules that price an hour.

A device's `tariffs` is a list sorted by `from` (a date in the device's time zone); a tariff
applies from that local midnight until the next one's `from`. Its `rates` are a step function over
the local day (the first starts at 00:00); `weekend_rates`, when given, apply on Saturdays and
Sundays. An hour costs its kWh times the rate in force at the hour's local start.

The flat `tariff_per_kwh` (with the device's `currency`) is the shorthand for one rate: it applies
before the first tariff's `from`, and at every date when the list is empty. A date with neither has
no price: its cost is null, never a guess.

Shared by the devices context (which validates what admins send) and monitoring (which costs
history from its replica): plain values and functions, no I/O.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MAX_RATES_A_DAY = 48
MAX_TARIFFS = 24
# Every device event carries the whole device, and up to ten events go in one SNS PublishBatch
# (256 KB in all): the rates of all tariffs together are capped so that a device stays ~20 KB.
MAX_RATES = 480
FIRST_DATE = dt.date(2000, 1, 1)
LAST_DATE = dt.date(2099, 12, 31)

TimeOfDay = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
PricePerKwh = Annotated[float, Field(ge=0, le=1_000, allow_inf_nan=False)]
Currency = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{3}$")]
TariffDate = Annotated[dt.date, Field(ge=FIRST_DATE, le=LAST_DATE)]


class Rate(BaseModel):
    """A price that applies from `start` (HH:MM, local) until the next rate's start."""

    model_config = ConfigDict(extra="forbid")
    start: TimeOfDay = Field(description="Local time of day, HH:MM.")
    price_per_kwh: PricePerKwh


def minutes(start: str) -> int:
    """Minutes after local midnight of an HH:MM time of day."""
    hours, _, mins = start.partition(":")
    return int(hours) * 60 + int(mins)


def _day_rates(rates: list[Rate]) -> list[Rate]:
    if rates[0].start != "00:00":
        raise ValueError(f"the first rate must start at 00:00, not {rates[0].start}")
    for before, after in itertools.pairwise(rates):
        if minutes(after.start) <= minutes(before.start):
            raise ValueError(f"rate starts must be in increasing order: {after.start} comes after {before.start}")
    return rates


DayRates = Annotated[list[Rate], Field(min_length=1, max_length=MAX_RATES_A_DAY), AfterValidator(_day_rates)]


class Tariff(BaseModel):
    """Prices from a local date (`from`) until the next tariff's."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: TariffDate = Field(alias="from", description="The local date from whose midnight it applies.")
    currency: Currency
    rates: DayRates = Field(description="The day's rates by start; the first starts at 00:00.")
    weekend_rates: DayRates | None = Field(default=None, description="Saturdays' and Sundays' rates, when they differ.")


def _effective_order(tariffs: list[Tariff]) -> list[Tariff]:
    for index, (before, after) in enumerate(itertools.pairwise(tariffs), start=1):
        if after.from_ <= before.from_:
            raise ValueError(f"tariffs must be sorted by from without overlap: tariff {index} is from {after.from_}, "
                             f"not after tariff {index - 1}'s {before.from_}")
    count = sum(len(t.rates) + len(t.weekend_rates or ()) for t in tariffs)
    if count > MAX_RATES:
        raise ValueError(f"at most {MAX_RATES} rates in all tariffs together, not {count}")
    return tariffs


Tariffs = Annotated[list[Tariff], Field(max_length=MAX_TARIFFS), AfterValidator(_effective_order)]


# --- pricing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """What a kWh costs at some moment, and in which currency (None: not given)."""

    per_kwh: Decimal
    currency: str | None


@dataclass(frozen=True)
class _Day:
    starts: tuple[int, ...]  # minutes after local midnight
    prices: tuple[Price, ...]

    def at(self, minute: int) -> Price:
        return self.prices[bisect.bisect_right(self.starts, minute) - 1]


def _day(rates: Sequence[Rate], currency: str) -> _Day:
    return _Day(tuple(minutes(r.start) for r in rates),
                tuple(Price(Decimal(str(r.price_per_kwh)), currency) for r in rates))


class Schedule:
    """A device's prices over time: its tariffs, and the flat rate before the first (or at every
    date when there is none)."""

    def __init__(self, tariffs: Sequence[Tariff], flat_per_kwh: float | None, flat_currency: str | None,
                 timezone: str) -> None:
        self._zone = ZoneInfo(timezone)
        self._froms = [t.from_ for t in tariffs]
        self._weekdays = [_day(t.rates, t.currency) for t in tariffs]
        self._weekends = [_day(t.weekend_rates or t.rates, t.currency) for t in tariffs]
        self._flat = None if flat_per_kwh is None else Price(Decimal(str(flat_per_kwh)), flat_currency)

    def _tariff_index(self, day: dt.date) -> int:
        """The tariff in force on a local date; -1 before the first."""
        return bisect.bisect_right(self._froms, day) - 1

    def price_at(self, moment: dt.datetime) -> Price | None:
        """The price in force at an instant (an hour's start), by its local date and time of day."""
        local = moment.astimezone(self._zone)
        index = self._tariff_index(local.date())
        if index < 0:
            return self._flat
        day = self._weekends[index] if local.weekday() >= 5 else self._weekdays[index]
        return day.at(local.hour * 60 + local.minute)

    def priced_on(self, day: dt.date) -> tuple[bool, str | None]:
        """Whether a local date has prices, and their currency (one a day: tariffs change at midnight)."""
        index = self._tariff_index(day)
        if index >= 0:
            return True, self._weekdays[index].prices[0].currency
        return (False, None) if self._flat is None else (True, self._flat.currency)


@dataclass
class Bill:
    """The cost of a period, hour by hour. Its total is one number only when every counted hour had
    a price and every priced date of the period has the same currency; otherwise the total is None
    and `by_currency` and `uncosted_kwh` say what is known."""

    by_currency: dict[str | None, Decimal] = field(default_factory=dict)
    uncosted_kwh: Decimal = Decimal(0)

    def priced_day(self, priced: bool, currency: str | None) -> None:
        """A date of the period: a priced one puts its currency in force, even without readings."""
        if priced:
            self.by_currency.setdefault(currency, Decimal(0))

    def add(self, kwh: Decimal, price: Price | None) -> Decimal | None:
        """Count an hour's kWh at its price; its cost (None without a price)."""
        if price is None:
            self.uncosted_kwh += kwh
            return None
        cost = kwh * price.per_kwh
        self.by_currency[price.currency] = self.by_currency.get(price.currency, Decimal(0)) + cost
        return cost

    @property
    def currency(self) -> str | None:
        """The period's one currency; None when it has none or several."""
        return next(iter(self.by_currency)) if len(self.by_currency) == 1 else None

    @property
    def total(self) -> Decimal | None:
        """The period's cost; None when some counted kWh had no price, or currencies are mixed."""
        if self.uncosted_kwh or len(self.by_currency) != 1:
            return None
        return next(iter(self.by_currency.values()))
