"""The reading message, the one thing the simulator shares with the backend.

`{"timestamp": "2026-11-23T20:10:00Z", "device_id": "<id>", "measurement_value": <kWh in the interval>}`
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

UTC = dt.UTC
# Six places: what the backend keeps, and enough to make float noise from differencing vanish.
VALUE_PLACES = 6


@dataclass(frozen=True)
class Reading:
    """The kWh a device used in the interval that starts at `timestamp` (aware)."""

    timestamp: dt.datetime
    device_id: str
    kwh: float

    def to_message(self) -> str:
        """The SQS message body."""
        return json.dumps(
            {
                "timestamp": format_timestamp(self.timestamp),
                "device_id": self.device_id,
                "measurement_value": round(self.kwh, VALUE_PLACES),
            }
        )


def format_timestamp(moment: dt.datetime) -> str:
    """ISO-8601 UTC with a `Z`, whole seconds: `2026-11-23T20:10:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> dt.datetime:
    """ISO-8601 (`Z` or an offset; a naive one is UTC) or epoch seconds, as an aware UTC datetime."""
    text = text.strip()
    try:
        return dt.datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp {text!r} is out of range") from exc
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"timestamp {text!r} is not ISO-8601") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
