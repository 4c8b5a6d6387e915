"""Tariff lists the tests of several layers share."""

from __future__ import annotations

from typing import Any

# Two periods: evening peak prices and a weekend price until March, one flat price from then on.
TWO_PERIODS: list[dict[str, Any]] = [
    {"from": "2026-01-01", "currency": "EUR",
     "rates": [{"start": "00:00", "price_per_kwh": 0.12}, {"start": "17:00", "price_per_kwh": 0.35},
               {"start": "21:00", "price_per_kwh": 0.12}],
     "weekend_rates": [{"start": "00:00", "price_per_kwh": 0.10}]},
    {"from": "2026-03-01", "currency": "EUR", "rates": [{"start": "00:00", "price_per_kwh": 0.20}]},
]
