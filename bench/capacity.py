"""A capacity model from 10,000 to a million meters (one reading each every 10 minutes) and 100,000
open sockets: `python -m bench.capacity [--quick] [--output FILE]`.

The calls each path makes are measured, not typed in, so the model follows the code:
- ingestion, whole path (readings consumer, notifications consumer, pushes), by the probe beside a
  runtime (see `bench.probe` and `bench.cost`), in batch messages as the simulator sends them;
- a fleet page (50 rows) and a device-list page (50), through the app's REST handler (`probe.run_rest`);
- one silent check with nothing due (the schedule's messages and one page a shard), through the
  app's code beside the runtime (`probe.run_silent`).
Those counts times the rates give every AWS call per second; the model then sets them against the
limits that apply (DynamoDB's 1,000 write units a second on one partition, the default
Lambda concurrency of 1,000, API Gateway WebSocket's 500 new connections a second and 10,000
requests a second, assumed to cover @connections posts) and names the one that binds first.

Assumed, and printed with the result: Lambda durations on AWS equal the ones measured here
(a 2-core machine with an emulated endpoint: an upper bound for the calls' waits is not known),
over-consumption alerts in 1% of meter-hours, sockets reconnecting every 2 hours (the WebSocket
API's limit), an owner's dashboard open 2 hours a day.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench import cost, probe
from bench.runtime import BenchRuntime

SCALES = (10_000, 100_000, 1_000_000)
SOCKETS = 100_000
INTERVAL_S = 600.0
ALERT_SHARE = 0.01  # meter-hours that go over the limit
RECONNECT_S = 7200.0  # the WebSocket API closes a connection after 2 hours
LIMITS = {
    "DynamoDB writes a second on one partition": 1000.0,
    "Lambda concurrent executions (account default)": 1000.0,
    "WebSocket new connections a second": 500.0,
    "API Gateway requests a second (account)": 10_000.0,
}


def measure(quick: bool) -> dict[str, Any]:
    with BenchRuntime(label="capacity") as runtime:
        options = cost.Options(sample_readings=100 if quick else 300, sample_devices=20 if quick else 50)
        ingestion = cost.measure(runtime, options)
        admin = runtime.admin()
        rest = probe.run_rest(runtime, [
            {"name": "fleet page", "path": "/fleet", "query": {"limit": "50"}, "headers": admin.headers},
            {"name": "device list page", "path": "/devices", "query": {"limit": "50"}, "headers": admin.headers},
        ], repeat=5 if quick else 20)
        # The sample's meters went quiet long ago: the first check raises their silences, the second
        # is a check with nothing due, what runs every minute of a healthy fleet.
        probe.run_silent(runtime)
        silent = probe.run_silent(runtime)
    return {"ingestion": ingestion, "cost_options": options.__dict__, "rest": rest, "silent_check": silent["calls"]}


def model(measured: dict[str, Any], meters: int) -> dict[str, Any]:
    result = measured["ingestion"]
    per = probe.per_reading(result)
    ops = per["operations_per_reading"]
    readings_per_s = meters / INTERVAL_S
    calls_per_s = {op: n * readings_per_s for op, n in ops.items()}
    writes = sum(n for op, n in ops.items() if op.split(".")[-1] in ("PutItem", "UpdateItem", "DeleteItem",
                                                                       "BatchWriteItem", "TransactWriteItems"))
    functions = per["functions"]
    concurrency = sum(f["invocations_per_reading"] * readings_per_s * f["mean_duration_ms"] / 1000
                      for f in functions.values())
    alerts_per_s = meters * ALERT_SHARE / 3600
    # Partitions with one key: the silence deadlines' shards take every newest-hour write (8 shards);
    # the admins' feed takes every alert and every acknowledgement; the fleet's count, every device
    # created (a bulk import of 10,000 in a minute).
    hot = {
        "silence deadline index, per shard (8)": writes * readings_per_s / 8,
        "admins' alert feed": 2 * alerts_per_s,
        "fleet count (10,000 devices imported in 60 s)": 10_000 / 60,
        "one meter's hour": 1 / INTERVAL_S,
    }
    frames_per_s = ops.get("apigatewaymanagementapi.PostToConnection", 0.0) * readings_per_s * (2 / 24)
    usage = {
        "DynamoDB writes a second on one partition": max(hot.values()),
        "Lambda concurrent executions (account default)": concurrency,
        "WebSocket new connections a second": SOCKETS / RECONNECT_S,
        "API Gateway requests a second (account)": frames_per_s,
    }
    ratios = {name: usage[name] / LIMITS[name] for name in LIMITS}
    binding = max(ratios, key=lambda name: ratios[name])
    bill = cost.model(result, cost.Options(**{**measured["cost_options"], "devices": meters}))
    return {
        "meters": meters, "readings_per_s": readings_per_s, "aws_calls_per_s": calls_per_s,
        "aws_calls_per_s_total": sum(calls_per_s.values()),
        "dynamodb_write_requests_per_s": writes * readings_per_s, "lambda_concurrency": concurrency,
        "hot_partitions_writes_per_s": hot, "limits": LIMITS, "usage": usage, "usage_ratio": ratios,
        "binds_first": binding, "monthly_usd": bill["total_usd"], "monthly_usd_per_meter": bill["per_device_usd"],
    }


def _cell(table: str, key: str, form: str, model: dict[str, Any]) -> str:
    return form.format(model[table][key])


def report(measured: dict[str, Any], models: list[dict[str, Any]]) -> str:
    lines = ["Measured calls per unit of work:"]
    per = probe.per_reading(measured["ingestion"])
    lines.append("  ingestion, per reading: " + ", ".join(f"{op} {n:.3f}" for op, n in
                                                         per["operations_per_reading"].items()))
    for name, found in measured["rest"].items():
        lines.append(f"  {name}, per request: " + ", ".join(f"{op} {n:.2f}" for op, n in
                                                           found["calls_per_request"].items()))
    lines.append("  silent check with nothing due, per run: " + ", ".join(
        f"{op} {n}" for op, n in sorted(measured["silent_check"].items())))
    lines.append("")
    header = f"{'':52}" + "".join(f"{m['meters']:>16,}" for m in models)
    lines.append(header + "  meters")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("readings a second", lambda m: f"{m['readings_per_s']:,.1f}"),
        ("AWS calls a second, ingestion path", lambda m: f"{m['aws_calls_per_s_total']:,.0f}"),
        ("DynamoDB write requests a second", lambda m: f"{m['dynamodb_write_requests_per_s']:,.0f}"),
        ("Lambda concurrency (mean)", lambda m: f"{m['lambda_concurrency']:,.1f}"),
        *[(f"hot key: {k}", partial(_cell, "hot_partitions_writes_per_s", k, "{:,.1f}/s"))
          for k in models[0]["hot_partitions_writes_per_s"]],
        *[(f"{k} (of {v:,.0f})", partial(_cell, "usage_ratio", k, "{:.1%}")) for k, v in LIMITS.items()],
        ("binds first", lambda m: m["binds_first"].split(" (")[0][:15]),
        ("monthly bill, USD", lambda m: f"{m['monthly_usd']:,.0f}"),
        ("per meter and month, USD", lambda m: f"{m['monthly_usd_per_meter']:.4f}"),
    ]
    for label, cell in rows:
        lines.append(f"{label[:52]:52}" + "".join(f"{cell(m):>16}" for m in models))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller sample")
    parser.add_argument("--output", default="bench/results/capacity.json")
    args = parser.parse_args(argv)
    measured = measure(args.quick)
    models = [model(measured, meters) for meters in SCALES]
    print(report(measured, models))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = {k: v for k, v in measured.items() if k != "ingestion"}
    out.write_text(json.dumps({"measured": raw, "per_reading": probe.per_reading(measured["ingestion"]),
                               "models": models}, indent=2, default=str))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
