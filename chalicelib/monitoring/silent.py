"""The silent-meter check: a device that has sent nothing for a few intervals gets an alert."""

from __future__ import annotations

import datetime as dt

from chalicelib.monitoring.domain import HourTotals, RaisedAlerts, is_silent, silent_alert
from chalicelib.monitoring.replica import MeterItem, meter_of
from chalicelib.observability import logger
from chalicelib.settings import get_settings


def check(now: dt.datetime, hours: HourTotals | None = None, alerts: RaisedAlerts | None = None) -> int:
    """Raise one silent-meter alert per silence (its id names the last reading); returns how many.
    `hours` and `alerts`: DynamoDB unless given."""
    from chalicelib.monitoring.alerts import DynamoRaisedAlerts
    from chalicelib.monitoring.totals import DynamoHourTotals

    hours = hours or DynamoHourTotals()
    alerts = alerts or DynamoRaisedAlerts()
    settings = get_settings()
    raised = 0
    for item in MeterItem.scan(filter_condition=MeterItem.deleted == False):
        meter = meter_of(item)
        latest = hours.latest(item.device_id) if meter is not None else None
        if meter is None or latest is None or not latest.values:
            continue  # never reported: nothing has gone quiet
        last = max(dt.datetime.fromisoformat(key) for key in latest.values)
        if not is_silent(last, now, settings.reading_interval_s, settings.silent_after_intervals):
            continue
        alert = silent_alert(meter, last, now)
        if alerts.announce(alert, now):
            raised += 1
            logger.info("silent meter alert raised", extra={"alert_id": alert.id})
    return raised
