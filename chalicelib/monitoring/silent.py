"""The silent-meter check: a device that has sent nothing for a few intervals gets an alert.

It reads only what is due. Ingestion writes each device's silence deadline (its last reading
plus the silent rule's span) on the device's newest hour, in the write that counts the reading,
and an index holds those deadlines by shard and time. The schedule sends one `silent.check`
message a shard; each is handled a page at a time (the rest of the shard goes on in a message of
its own), so a run costs what is due, and many due at once are spread over consumers instead of
outlasting the schedule's period.

A due hour is looked at once more before an alert: it may no longer be its device's newest (its
deadline is dropped), its device may have been deleted (dropped), or a reading may have come
since (the deadline is moved to the right time). A silence raises one alert, whose id names the
last reading, and its deadline is then dropped; the device's next reading sets a new one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from chalicelib.messages import SilentCheck, parse_silent_check
from chalicelib.monitoring import replica
from chalicelib.monitoring.domain import (
    DEADLINE_SHARDS,
    HourTotals,
    Meter,
    MeterStatus,
    RaisedAlerts,
    deadline_key,
    is_silent,
    silence_deadline,
    silent_alert,
)
from chalicelib.observability import logger
from chalicelib.platform import queues
from chalicelib.platform.consumer import Source
from chalicelib.settings import get_settings

QUEUE = "silent-checks"
SOURCE = Source(QUEUE, parse_silent_check)
PAGE = 100  # due deadlines handled by one message


def _send(messages: list[SilentCheck]) -> None:
    queues.send_many(QUEUE, list(messages))


class SilenceWatch:
    """Starts the check of every shard, and checks one page of a shard. Its ports: the hours,
    the raised alerts, the replica lookup, the clock and where the shard messages go."""

    def __init__(self, hours: HourTotals | None = None, alerts: RaisedAlerts | None = None,
                 lookup: Callable[[Iterable[str]], dict[str, Meter | None]] = replica.get_many,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 send: Callable[[list[SilentCheck]], None] = _send, status: MeterStatus | None = None) -> None:
        from chalicelib.monitoring.alerts import DynamoRaisedAlerts
        from chalicelib.monitoring.totals import DynamoHourTotals

        self._hours: HourTotals = hours or DynamoHourTotals()
        self._alerts: RaisedAlerts = alerts or DynamoRaisedAlerts()
        self._status: MeterStatus = status or replica.DynamoMeterStatus()
        self._lookup = lookup
        self._clock = clock
        self._send = send

    def start(self, now: dt.datetime | None = None) -> int:
        """One message a shard: what is due by `now` (now unless given); the number sent."""
        until = deadline_key(now or self._clock())
        self._send([SilentCheck(shard=shard, until=until) for shard in range(DEADLINE_SHARDS)])
        return DEADLINE_SHARDS

    def check(self, message: SilentCheck) -> int:
        """Handle one page of a shard's due deadlines; the alerts raised. A page that is not the
        last sends the rest on first, so a failure below retries this page only."""
        due, rest = self._hours.due(message.shard, message.until, PAGE, message.cursor)
        if rest is not None:
            self._send([message.model_copy(update={"cursor": rest})])
        meters = self._lookup({device_id for device_id, _ in due}) if due else {}
        raised = sum(self._look_at(meters.get(device_id), device_id, hour) for device_id, hour in due)
        logger.info("silent check", extra={"shard": message.shard, "due": len(due), "raised": raised,
                                           "more": rest is not None})
        return raised

    def _look_at(self, meter: Meter | None, device_id: str, hour: str) -> bool:
        """A due hour: raise its device's silence, or put its deadline right. True if raised."""
        if meter is None:  # deleted (its history goes with it) or never known
            self._hours.set_deadline(device_id, hour, None)
            return False
        latest = self._hours.latest(device_id)
        last = latest.last_reading() if latest is not None else None
        if latest is None or last is None:
            return False
        if latest.hour_start != hour:  # a newer hour holds the device's deadline now
            self._hours.set_deadline(device_id, hour, None)
            if latest.silent_at is None:
                self._hours.set_deadline(device_id, latest.hour_start, deadline_of(last))
            return False
        now = self._clock()
        settings = get_settings()
        if not is_silent(last, now, settings.reading_interval_s, settings.silent_after_intervals):
            self._hours.set_deadline(device_id, hour, deadline_of(last))
            return False
        alert = silent_alert(meter, last, now)
        raised = self._alerts.announce(alert, now, fresh=True)  # its deadline was still indexed: most likely new
        self._status.silenced(device_id)
        self._hours.set_deadline(device_id, hour, None)  # one alert a silence: looked at no more
        if raised:
            logger.info("silent meter alert raised", extra={"alert_id": alert.id})
        return raised


def deadline_of(last: dt.datetime) -> str:
    """The silence deadline of a meter whose last reading is `last`, by the stage's silent rule."""
    settings = get_settings()
    return deadline_key(silence_deadline(last, settings.reading_interval_s, settings.silent_after_intervals))
