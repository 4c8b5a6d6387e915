"""The silent-meter check: a device that has sent nothing for a few intervals gets an alert."""

from __future__ import annotations

import datetime as dt

from chalicelib.monitoring import alerts, totals
from chalicelib.monitoring.readings import hour_key
from chalicelib.monitoring.replica import MeterItem
from chalicelib.observability import logger
from chalicelib.settings import get_settings


def silent_alert(device_id: str, device_name: str, last_reading: dt.datetime, limit: float,
                 now: dt.datetime) -> alerts.Alert:
    last = last_reading.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return alerts.Alert(
        id=f"{device_id}:silent:{last}", kind="silent_meter", device_id=device_id, device_name=device_name,
        hour_start=hour_key(last_reading), total_kwh=0.0, max_hourly_kwh=limit,
        created_at=now.isoformat(timespec="seconds"),
    )


def is_silent(last_reading: dt.datetime, now: dt.datetime, interval_s: int, intervals: int) -> bool:
    """Pure rule: silent once `intervals` whole intervals have passed with no reading."""
    return (now - last_reading).total_seconds() >= interval_s * intervals


def check(now: dt.datetime) -> int:
    """Raise one silent-meter alert per silence (its id names the last reading); returns how many."""
    settings = get_settings()
    raised = 0
    for meter in MeterItem.scan(filter_condition=MeterItem.deleted == False):
        latest = totals.latest(meter.device_id)
        if latest is None or not latest.values:
            continue  # never reported: nothing has gone quiet
        last = max(dt.datetime.fromisoformat(key) for key in latest.values)
        if not is_silent(last, now, settings.reading_interval_s, settings.silent_after_intervals):
            continue
        alert = silent_alert(meter.device_id, meter.name, last, float(meter.max_hourly_kwh), now)
        if alerts.announce(alert, now):
            raised += 1
            logger.info("silent meter alert raised", extra={"alert_id": alert.id})
    return raised
