"""Alert latency: from sending the reading that crosses a limit to the `alert` frame at the owner's socket.

Each alert needs a device-hour of its own (one alert per device and hour), so alerts go to
a set of devices, hour after hour, one at a time: send, wait for the frame, next. That is
done idle, then again on other devices while a producer sends ordinary readings of other
devices at a steady rate. The baseline is the last hop alone: a frame posted straight to the
same socket through the management API, from one client.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import requests

from bench.load import READINGS_PER_DAY, SteadyProducer, batch_messages, interval_readings
from bench.report import Figure, percentile
from bench.runtime import BenchError, BenchRuntime
from bench.sockets import Listener

GROUP = "alert latency"
LIMIT_KWH = 1.0
CROSSING_KWH = 2.0
FIRST_HOUR = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
BACKGROUND_DAY = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
DEVICES_PER_SET = 20
WARM_UP = 3


@dataclass(frozen=True)
class Options:
    alerts: int = 200
    background_rate_per_s: float = 10.0
    background_devices: int = 50
    background_per_message: int = 50  # readings in one background message (one interval of every device)
    background_max_depth: int = 50  # the producer holds back rather than let the queue grow past this
    timeout_per_alert_s: float = 10.0
    budget_s: float = 600.0  # per condition: alerts not sent by then are not measured (and said so)


def hour_key(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:00:00Z")


def measure(runtime: BenchRuntime, listener: Listener, devices: list[str], count: int, first_hour: dt.datetime,
            timeout_s: float, budget_s: float = 3600.0) -> tuple[list[float], int]:
    """Latencies (ms) of up to `count` alerts, each on a fresh device-hour, within `budget_s`; and how many
    never arrived within `timeout_s`."""
    sqs = runtime.own_client("sqs")
    queue_url = runtime.queue_url("readings")
    latencies: list[float] = []
    lost = 0
    ends_at = time.monotonic() + budget_s
    for i in range(count):
        if time.monotonic() > ends_at:
            break
        device = devices[i % len(devices)]
        hour = first_hour + dt.timedelta(hours=i // len(devices))
        body = json.dumps({"timestamp": (hour + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "device_id": device, "measurement_value": CROSSING_KWH})
        sent_at = time.perf_counter()
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        arrived = listener.wait(f"alert:{device}:{hour_key(hour)}", timeout_s)
        if arrived is None:
            lost += 1
        else:
            latencies.append((arrived - sent_at) * 1000)
    return latencies, lost


def direct_posts(runtime: BenchRuntime, listener: Listener, user_id: str, count: int) -> list[float]:
    """Latencies (ms) of frames posted straight to the listener's connection through the management API."""
    ids = runtime.connection_ids(user_id)
    if len(ids) != 1:
        raise BenchError(f"expected one connection for the alerts' owner, found {len(ids)}")
    latencies: list[float] = []
    with requests.Session() as session:
        for n in range(count):
            data = json.dumps({"type": "bench.probe", "n": n}).encode()
            sent_at = time.perf_counter()
            if runtime.post_to_connection(session, ids[0], data) != 200:
                raise BenchError("the management API refused a post to an open connection")
            arrived = listener.wait(f"probe:{n}", 10)
            if arrived is not None:
                latencies.append((arrived - sent_at) * 1000)
    return latencies


def summary(latencies: list[float]) -> dict[str, Any]:
    return {"count": len(latencies), "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99), "max_ms": max(latencies) if latencies else None,
            "mean_ms": sum(latencies) / len(latencies) if latencies else None}


def run(runtime: BenchRuntime, options: Options, log: Any = print) -> tuple[list[Figure], dict[str, Any]]:
    owner = runtime.new_client("alerts")
    quiet_owner = runtime.new_client("background")
    idle_devices = runtime.create_devices(DEVICES_PER_SET, [owner.id], LIMIT_KWH, prefix="al-idle")
    loaded_devices = runtime.create_devices(DEVICES_PER_SET, [owner.id], LIMIT_KWH, prefix="al-load")
    background = runtime.create_devices(options.background_devices, [quiet_owner.id], 1000.0, prefix="al-bg")
    listener = Listener(runtime.socket_url(owner))
    errors_from = runtime.mark()
    hours_per_set = math.ceil((options.alerts + WARM_UP) / DEVICES_PER_SET)
    try:
        direct = direct_posts(runtime, listener, owner.id, options.alerts)
        # A few first: the workers' first invocations create their clients.
        measure(runtime, listener, idle_devices, WARM_UP, FIRST_HOUR, options.timeout_per_alert_s)
        log(f"alerts: {options.alerts} idle")
        idle, idle_lost = measure(runtime, listener, idle_devices, options.alerts, FIRST_HOUR + dt.timedelta(hours=1),
                                  options.timeout_per_alert_s, options.budget_s)
        # Enough background readings for the loaded run at a few times the idle latency.
        idle_p50_s = (percentile(idle, 50) or 1000) / 1000
        wanted = int(options.background_rate_per_s * options.alerts * max(4 * idle_p50_s, 1.0)) + 1000
        days = min(max(math.ceil(wanted / (len(background) * READINGS_PER_DAY)), 1), 60)
        # In the real-time shape that ingestion's maximum was measured with: batch messages of many meters.
        bodies = batch_messages(
            interval_readings(background, BACKGROUND_DAY - dt.timedelta(days=days - 1), days * READINGS_PER_DAY),
            options.background_per_message, "interleaved")
        log(f"alerts: {options.alerts} under {options.background_rate_per_s:.0f} background readings/s")
        producer = SteadyProducer(runtime.own_client, runtime.queue_url("readings"), bodies,
                                  options.background_rate_per_s / options.background_per_message,
                                  max_depth=options.background_max_depth).start()
        load_started = time.monotonic()
        time.sleep(2.0)  # the load reaches the consumers before the first alert
        try:
            loaded, loaded_lost = measure(runtime, listener, loaded_devices, options.alerts,
                                          FIRST_HOUR + dt.timedelta(hours=hours_per_set + 1),
                                          options.timeout_per_alert_s, options.budget_s)
        finally:
            load_s = time.monotonic() - load_started
            stats = producer.stop()
        if producer.error is not None:
            raise BenchError(f"background producer: {producer.error}")
    finally:
        listener.close()
    achieved_rate = stats.sent * options.background_per_message / load_s if load_s > 0 else 0.0
    details = {
        "options": options.__dict__,
        "idle": summary(idle) | {"lost": idle_lost},
        "loaded": summary(loaded) | {"lost": loaded_lost, "background_sent": stats.sent,
                                     "background_rate_per_s": achieved_rate,
                                     "background_ran_out": stats.sent >= len(bodies)},
        "direct_post": summary(direct),
        "errors": runtime.errors(errors_from),
    }
    figures: list[Figure] = []
    for q in (50, 95, 99):
        figures.append(Figure(GROUP, f"p{q}, idle", percentile(idle, q), "ms",
                              baseline=percentile(direct, q), baseline_name="direct post to the socket",
                              target_op="<=" if q == 99 else None, target=250.0 if q == 99 else None))
    for q in (50, 95, 99):
        figures.append(Figure(GROUP, f"p{q}, {achieved_rate:.0f} readings/s background", percentile(loaded, q), "ms",
                              baseline=percentile(idle, q), baseline_name="idle",
                              target_op="<=" if q == 99 else None, target=250.0 if q == 99 else None))
    if idle_lost or loaded_lost:
        figures.append(Figure(GROUP, f"alerts later than {options.timeout_per_alert_s:.0f} s",
                              float(idle_lost + loaded_lost), target_op="<=", target=0.0))
    for name, measured, lost in (("idle", idle, idle_lost), ("loaded", loaded, loaded_lost)):
        if len(measured) + lost < options.alerts:
            figures.append(Figure(GROUP, f"alerts measured, {name}", float(len(measured)), baseline=options.alerts,
                                  baseline_name="wanted", note=f"the {options.budget_s:.0f} s budget ran out"))
    return figures, details
