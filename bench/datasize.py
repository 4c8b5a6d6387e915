"""Cost against the data: the day view and ingestion on an empty stack, then with a year of history.

On one fresh runtime: devices are made (a household each) and one local day of hourly totals
is put in for each; the day view's latency (one kept-alive client, `requests` each) and
ingestion's throughput (a day of interleaved batch messages for every device) are measured.
Then a year of hourly totals for every device is loaded (the endpoint's bulk load, as
DynamoDB's ImportTable would) and `queued` messages are put in the readings queue with the
longest delay SQS allows (the queue holds them while nothing consumes them), and both are
measured again. Each figure with data is shown beside the same figure on the empty stack.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import requests

from bench.load import batch_messages, interval_readings, produce_paced
from bench.report import Figure, percentile
from bench.runtime import BenchError, BenchRuntime

GROUP = "data size"
DAY = dt.date(2026, 6, 15)
HOURS_PER_YEAR = 365 * 24


@dataclass(frozen=True)
class Options:
    devices: int = 200
    history_hours: int = HOURS_PER_YEAR
    queued: int = 10_000
    requests: int = 200
    ingest_intervals: int = 12  # two hours of every device
    per_message: int = 100


def hour_items(device_id: str, first: dt.datetime, hours: int) -> list[dict[str, Any]]:
    """Hourly-totals items as ingestion writes them (six readings an hour)."""
    items = []
    for h in range(hours):
        start = first + dt.timedelta(hours=h)
        stamps = [(start + dt.timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(6)]
        items.append({
            "device_id": {"S": device_id}, "hour_start": {"S": start.strftime("%Y-%m-%dT%H:00:00Z")},
            "total_kwh": {"N": "0.6"}, "reading_count": {"N": "6"}, "seen": {"SS": stamps},
            "vals": {"SS": [f"{s}=0.1" for s in stamps]},
        })
    return items


def bulk_load(runtime: BenchRuntime, table: str, items: list[dict[str, Any]], chunk: int = 20_000) -> None:
    keys = runtime.keys()
    with requests.Session() as session:
        for start in range(0, len(items), chunk):
            response = session.post(f"{runtime.endpoint_url}/_ems/bulk-load", timeout=300,
                                    headers={"Authorization": f"Credential={keys.access_key_id}/bulk-load"},
                                    data=json.dumps({"TableName": table, "Items": items[start:start + chunk]}))
            if response.status_code != 200:
                raise BenchError(f"bulk load into {table}: {response.status_code} {response.text[:200]}")


def day_view_ms(runtime: BenchRuntime, headers: dict[str, str], device_ids: list[str], count: int) -> list[float]:
    """Latencies of `count` day views (the devices in turn), one kept-alive client."""
    latencies: list[float] = []
    with requests.Session() as session:
        for i in range(count):
            url = f"{runtime.rest_url}/devices/{device_ids[i % len(device_ids)]}/consumption?date={DAY}"
            started = time.perf_counter()
            response = session.get(url, headers=headers, timeout=60)
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200 or len(response.json()["hours"]) != 24:
                raise BenchError(f"day view: {response.status_code} {response.text[:200]}")
    return latencies


def ingest_per_s(runtime: BenchRuntime, device_ids: list[str], first: dt.datetime, options: Options) -> float:
    """Unique readings per second through the readings queue for a slice of interleaved batch messages."""
    readings = interval_readings(device_ids, first, options.ingest_intervals)
    messages = batch_messages(readings, options.per_message, "interleaved")
    batches = runtime.follow("readings batch")
    counted = 0
    produced: dict[str, Any] = {}
    producer = threading.Thread(target=lambda: produced.update(stats=produce_paced(
        runtime.own_client, runtime.queue_url("readings"), messages, max_depth=50, threads=2, timeout_s=600)),
        daemon=True)
    started = time.time()
    producer.start()
    deadline = time.monotonic() + 600
    last_at = started
    while counted < len(readings) and time.monotonic() < deadline:
        for batch in batches.new():
            counted += int(batch.get("counted", 0))
            last_at = time.time()
        time.sleep(0.05)
    producer.join(60)
    if counted < len(readings):
        raise BenchError(f"only {counted} of {len(readings)} readings counted")
    return len(readings) / max(last_at - started, 1e-3)


def measure(runtime: BenchRuntime, headers: dict[str, str], devices: list[str], first: dt.datetime,
            options: Options) -> dict[str, Any]:
    sample = devices[: min(20, len(devices))]
    day_view_ms(runtime, headers, sample, 10)  # warm the execution environments
    # (a day of its own, apart from every measured one: a repeated reading would count nothing)
    ingest_per_s(runtime, devices, first + dt.timedelta(days=100), replace(options, ingest_intervals=2))
    latencies = day_view_ms(runtime, headers, sample, options.requests)
    return {"day_view_p50_ms": percentile(latencies, 50), "day_view_p99_ms": percentile(latencies, 99),
            "readings_per_s": ingest_per_s(runtime, devices, first, options)}


def run(options: Options, log: Any = print) -> tuple[list[Figure], dict[str, Any]]:
    with BenchRuntime(label="datasize", env={"EMS_ENDPOINT_BULK_LOAD": "1"}) as runtime:
        admin = runtime.admin()
        households = runtime.register_users(options.devices)
        devices = runtime.create_devices(options.devices, [], 1000.0, prefix="size", timezone="UTC",
                                         owners_by_device=[[h] for h in households])
        table = runtime.name("hourly-totals")
        day_start = dt.datetime.combine(DAY, dt.time(0), tzinfo=dt.UTC)
        bulk_load(runtime, table, [item for d in devices for item in hour_items(d, day_start, 24)])
        log(f"data size: {options.devices} devices, empty stack")
        empty = measure(runtime, admin.headers, devices, day_start + dt.timedelta(days=30), options)

        started = time.monotonic()
        history_start = day_start - dt.timedelta(hours=options.history_hours - 24)
        for device_id in devices:  # a device at a time keeps the client's memory small
            bulk_load(runtime, table, hour_items(device_id, history_start, options.history_hours - 24))
        sqs = runtime.client("sqs")
        queue_url = runtime.queue_url("readings")
        body = json.dumps({"readings": []})
        for start in range(0, options.queued, 10):
            sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "MessageBody": body, "DelaySeconds": 900} for i in range(min(10, options.queued - start))])
        load_s = time.monotonic() - started
        items = runtime.client("dynamodb").describe_table(TableName=table)["Table"].get("ItemCount")
        log(f"data size: {items} hourly items, {options.queued} messages queued ({load_s:.0f} s)")
        full = measure(runtime, admin.headers, devices, day_start + dt.timedelta(days=31), options)

    label = f"{options.history_hours // 24} days x {options.devices} devices, {options.queued:,} queued"
    figures = [
        Figure(GROUP, f"day view p50, {label}", full["day_view_p50_ms"], "ms", baseline=empty["day_view_p50_ms"],
               baseline_name="empty stack"),
        Figure(GROUP, f"day view p99, {label}", full["day_view_p99_ms"], "ms", baseline=empty["day_view_p99_ms"],
               baseline_name="empty stack", target_op="<=", target=1.5, on_ratio=True),
        Figure(GROUP, f"ingestion readings/s, {label}", full["readings_per_s"], "/s",
               baseline=empty["readings_per_s"], baseline_name="empty stack", target_op=">=", target=1 / 1.5,
               on_ratio=True),
    ]
    return figures, {"options": options.__dict__, "empty": empty, "full": full, "hourly_items": items,
                     "load_s": load_s}
