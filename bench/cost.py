"""Cost model: the monthly AWS bill of the ingestion path for 10,000 meters at one reading per 10 minutes.

Nothing per reading is estimated: the probe (see `bench.probe`) runs the app's consumers over
a sample sent at the modelled rate (10,000 meters / 600 s), with one owner's socket open,
and counts every call: SQS requests of the event sources and the functions, DynamoDB write
requests (each item of a batch, two for an item of a transaction; billed by the largest item
written, in 1 KB steps) and read units (from the items
read, in 4 KB steps), Lambda invocations and billed milliseconds, frames posted to sockets.
Those are multiplied by the month's readings and the on-demand prices below.

What is assumed, and said so in the result: readings reach the queue as batch messages of
`per_message` readings (a head-end system or gateway that collects its meters' readings, as
the simulator and `POST /api/readings` do; `per_message=1` models meters that each send their
own), so the producers' SendMessage requests per reading are counted from the sample; an owner per device keeps a dashboard
open `connected_hours_per_day` (frames only reach open sockets; a frame is one message per
32 KB); a month is 730 hours; free tiers are left out; alerts (at most one per device-hour)
and REST traffic are not part of this path.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

from bench import probe
from bench.load import batch_messages, interval_readings
from bench.report import Figure
from bench.runtime import PROJECT_DIR, BenchRuntime
from bench.sockets import Listener

GROUP = "cost"
PRICES_CHECKED = "2026-11-23"
PRICES_NOTE = f"prices as published for us-east-1, checked {PRICES_CHECKED}"
# On-demand list prices, us-east-1, USD.
PRICES = {
    "sqs_per_million_requests": 0.40,  # standard queue, per 64 KB chunk
    "dynamodb_per_million_wru": 0.625,  # on-demand, after the November 2024 cut
    "dynamodb_per_million_rru": 0.125,
    "dynamodb_per_gb_month": 0.25,  # standard table class storage
    "lambda_per_million_requests": 0.20,
    "lambda_per_gb_second": 0.0000166667,  # x86
    "websocket_per_million_messages": 1.00,  # first billion; a message is 32 KB
    "websocket_per_million_connection_minutes": 0.25,
    "sns_per_million_publishes": 0.50,  # not on this path: device events only
}
HOURS_PER_MONTH = 730
SAMPLE_DAY = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Options:
    devices: int = 10_000
    reading_interval_s: float = 600.0
    sample_readings: int = 300
    sample_devices: int = 50
    per_message: int = 100
    pollers: int = 2
    connected_hours_per_day: float = 2.0


def lambda_memory_mb() -> int:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    return int(config.get("lambda_memory_size", 128))


def measure(runtime: BenchRuntime, options: Options) -> dict[str, Any]:
    """The probe over a sample at the modelled rate, with the owner's socket open."""
    owner = runtime.new_client("cost")
    devices = runtime.create_devices(options.sample_devices, [owner.id], 1000.0, prefix="cost")
    # Meters that reported before (the steady state): a meter's very first reading also ends its
    # "never reported" state, a write once in its life that is not a cost per reading.
    sqs, readings_queue = runtime.client("sqs"), runtime.queue_url("readings")
    first = SAMPLE_DAY - dt.timedelta(days=1)
    for start in range(0, len(devices), 100):
        sqs.send_message(QueueUrl=readings_queue, MessageBody=json.dumps({"readings": [
            {"device_id": d, "timestamp": first.isoformat(), "measurement_value": 0.1}
            for d in devices[start:start + 100]]}))
    runtime.wait_drained()
    intervals = math.ceil(options.sample_readings / len(devices))
    # A fleet's batch message holds one reading of many meters: every reading in a device-hour of its own.
    sample = batch_messages(interval_readings(devices, SAMPLE_DAY, intervals, every=dt.timedelta(hours=1))
                            [: options.sample_readings], options.per_message, "interleaved")
    rate = options.devices / options.reading_interval_s / (options.sample_readings / len(sample))  # messages/s
    listener = Listener(runtime.socket_url(owner))
    try:
        result = probe.run(runtime, sample, rate_per_s=rate, pollers=options.pollers,
                           timeout_s=max(120.0, 4 * len(sample) / rate))
    finally:
        listener.close()
    return result


def model(result: dict[str, Any], options: Options) -> dict[str, Any]:
    """The monthly bill from a probe result."""
    readings = result["readings"]
    per_reading = probe.per_reading(result)
    ops = per_reading["operations_per_reading"]
    month_readings = options.devices * (3600 / options.reading_interval_s) * HOURS_PER_MONTH

    sqs_per_reading = sum(n for op, n in ops.items() if op.startswith("sqs."))
    meters_send = result["messages"] / readings  # the producers' SendMessage, one per message
    # Every item written, a transaction's at twice the price (ConditionCheck items included).
    writes = per_reading["billed_writes_per_reading"]
    largest = max(result["largest_item_bytes"].values(), default=0)
    wru_per_write = max(1, math.ceil(largest / 1024))
    rru = sum(result["read_units"].values()) / readings
    memory_gb = lambda_memory_mb() / 1024
    functions = per_reading["functions"]
    invocations = sum(f["invocations_per_reading"] for f in functions.values())
    billed_s = sum(f["billed_ms_per_reading"] for f in functions.values()) / 1000
    frames = ops.get("apigatewaymanagementapi.PostToConnection", 0.0)
    connected_share = options.connected_hours_per_day / 24
    connection_minutes = options.devices * options.connected_hours_per_day * 60 * HOURS_PER_MONTH / 24
    hourly_items_per_month = options.devices * HOURS_PER_MONTH
    hourly_table = next((size for table, size in result["largest_item_bytes"].items()
                         if table.endswith("-hourly-totals")), largest)

    p = PRICES
    lines = {
        "SQS requests": (month_readings * (sqs_per_reading + meters_send), p["sqs_per_million_requests"] / 1e6),
        "DynamoDB write units": (month_readings * writes * wru_per_write, p["dynamodb_per_million_wru"] / 1e6),
        "DynamoDB read units": (month_readings * rru, p["dynamodb_per_million_rru"] / 1e6),
        "DynamoDB storage (a month of hours)": (hourly_items_per_month * hourly_table / 1e9,
                                                p["dynamodb_per_gb_month"]),
        "Lambda requests": (month_readings * invocations, p["lambda_per_million_requests"] / 1e6),
        "Lambda GB-seconds": (month_readings * billed_s * memory_gb, p["lambda_per_gb_second"]),
        "WebSocket messages": (month_readings * frames * connected_share, p["websocket_per_million_messages"] / 1e6),
        "WebSocket connection minutes": (connection_minutes, p["websocket_per_million_connection_minutes"] / 1e6),
    }
    bill = {name: {"quantity": quantity, "unit_price": price, "usd": quantity * price}
            for name, (quantity, price) in lines.items()}
    total = sum(line["usd"] for line in bill.values())
    return {
        "prices": PRICES, "prices_note": PRICES_NOTE, "readings_per_month": month_readings,
        "per_reading": {
            "sqs_requests_counted": sqs_per_reading, "sqs_requests_meter_send": meters_send,
            "dynamodb_write_requests": writes, "write_units_per_write": wru_per_write,
            "largest_item_bytes": result["largest_item_bytes"], "dynamodb_read_units": rru,
            "lambda_invocations": invocations, "lambda_billed_s": billed_s, "lambda_memory_mb": lambda_memory_mb(),
            "frames_posted": frames, "operations": ops,
            "records_per_invocation": {n: f["records_per_invocation"] for n, f in functions.items()},
            "mean_duration_ms": {n: f["mean_duration_ms"] for n, f in functions.items()},
        },
        "assumptions": {
            "readings_per_message": readings / result["messages"], "owner_connected_hours_per_day": options.connected_hours_per_day,
            "hours_per_month": HOURS_PER_MONTH, "free_tiers": "not applied",
            "not_included": "alerts (at most one per device-hour), REST traffic, device events on SNS, data transfer",
        },
        "bill": bill,
        "total_usd": total,
        "per_device_usd": total / options.devices,
    }


def run(runtime: BenchRuntime, options: Options, log: Any = print) -> tuple[list[Figure], dict[str, Any]]:
    log(f"cost: probe over {options.sample_readings} readings at {options.devices / options.reading_interval_s:.1f}/s")
    result = measure(runtime, options)
    modelled = model(result, options)
    figures = [Figure(GROUP, f"{name}, per month", line["usd"], "USD") for name, line in modelled["bill"].items()]
    figures.append(Figure(GROUP, f"total, {options.devices:,} devices, per month", modelled["total_usd"], "USD",
                          note=PRICES_NOTE))
    figures.append(Figure(GROUP, "per device, per month", modelled["per_device_usd"], "USD"))
    raw = dict(result)
    raw["functions"] = {n: {k: v for k, v in f.items() if k != "durations_ms"} for n, f in result["functions"].items()}
    return figures, {"options": options.__dict__, "model": modelled, "probe": raw}
