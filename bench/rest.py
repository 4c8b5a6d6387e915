"""REST: latency and requests/s of the device list and a day view at 1, 8 and 32 concurrent clients.

Each client is a thread with its own `requests.Session` (kept-alive connection), sending the
next request as soon as the last one answered, for a fixed time or count. The baseline is a
trivial route through the same function: `GET /api/auth/me` without a token, answered 401
by the app before any AWS call; the gateway's own floor (a static file it serves without
the function) is in the details. At each level the routes are measured one after the other
so they see the same machine.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

from bench import probe
from bench.load import READINGS_PER_DAY, ProducerStats, interval_readings, send_batch
from bench.report import Figure, percentile
from bench.runtime import Account, BenchError, BenchRuntime, CpuMeter, wait_until

GROUP = "rest"
DAY = dt.date(2026, 6, 15)


@dataclass(frozen=True)
class Options:
    levels: tuple[int, ...] = (1, 8, 32)
    seconds: float = 8.0
    max_requests: int = 20_000
    devices: int = 4


def hammer(url: str, headers: dict[str, str], clients: int, seconds: float, max_requests: int,
           expected_status: int) -> dict[str, Any]:
    """`clients` threads requesting `url` back to back; latencies, throughput and unexpected answers."""
    latencies: list[float] = []
    unexpected: list[int] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    go = threading.Event()
    stop_at = [0.0]
    issued = [0]

    def client() -> None:
        with requests.Session() as session:
            for _ in range(2):  # the connection, and the server's thread for it
                session.get(url, headers=headers, timeout=60)
            ready.wait(120)
            go.wait(120)
            mine: list[float] = []
            bad: list[int] = []
            while time.perf_counter() < stop_at[0]:
                with lock:
                    if issued[0] >= max_requests:
                        break
                    issued[0] += 1
                started = time.perf_counter()
                status = session.get(url, headers=headers, timeout=60).status_code
                mine.append((time.perf_counter() - started) * 1000)
                if status != expected_status:
                    bad.append(status)
            with lock:
                latencies.extend(mine)
                unexpected.extend(bad)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait(120)
    started = time.perf_counter()
    stop_at[0] = started + seconds
    go.set()
    for thread in threads:
        thread.join(seconds + 120)
    elapsed = time.perf_counter() - started
    return {
        "clients": clients, "requests": len(latencies), "seconds": elapsed,
        "per_s": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else None, "unexpected_statuses": unexpected[:20],
        "unexpected": len(unexpected),
    }


def fill_day(runtime: BenchRuntime, device_id: str) -> None:
    """A full day of readings for the day view, counted before the measurement starts."""
    first = dt.datetime.combine(DAY, dt.time(0), tzinfo=dt.UTC)
    bodies = interval_readings([device_id], first, READINGS_PER_DAY)
    sqs = runtime.client("sqs")
    url = runtime.queue_url("readings")
    stats = ProducerStats()
    for start in range(0, len(bodies), 10):
        send_batch(sqs, url, bodies[start:start + 10], stats)
    dynamodb = runtime.client("dynamodb")

    def counted() -> bool:
        items = dynamodb.query(TableName=runtime.name("hourly-totals"), KeyConditionExpression="device_id = :d",
                               ExpressionAttributeValues={":d": {"S": device_id}},
                               ProjectionExpression="reading_count")["Items"]
        return sum(int(i["reading_count"]["N"]) for i in items) == READINGS_PER_DAY

    wait_until(counted, 300, "the day view's readings counted", interval_s=0.5)


def run(runtime: BenchRuntime, options: Options, log: Any = print) -> tuple[list[Figure], dict[str, Any]]:
    client: Account = runtime.new_client("rest")
    devices = runtime.create_devices(options.devices, [client.id], 10.0, prefix="rest")
    fill_day(runtime, devices[0])
    base = runtime.rest_url
    routes = {
        "trivial": (f"{base}/auth/me", {}, 401),
        "static": (base.removesuffix("/api") + "/runtime-config.json", {}, 200),
        "device list": (f"{base}/devices", client.headers, 200),
        "day view": (f"{base}/devices/{devices[0]}/consumption?date={DAY.isoformat()}", client.headers, 200),
    }
    checked = requests.get(routes["day view"][0], headers=client.headers, timeout=30).json()
    if sum(h["readings"] for h in checked["hours"]) != READINGS_PER_DAY:
        raise BenchError("the day view does not show the day's readings")
    results: dict[str, dict[str, Any]] = {}
    errors_from = runtime.mark()
    for clients in options.levels:
        log(f"rest: {clients} concurrent client(s)")
        for name, (url, headers, status) in routes.items():
            cpu = CpuMeter(runtime)
            measured = hammer(url, headers, clients, options.seconds, options.max_requests, status)
            results[f"{name}@{clients}"] = measured | {"cpu": cpu.stop()}
    calls = probe.run_rest(runtime, [
        {"name": "trivial", "path": "/auth/me"},
        {"name": "device list", "path": "/devices", "headers": client.headers},
        {"name": "day view", "path": f"/devices/{devices[0]}/consumption", "query": {"date": DAY.isoformat()},
         "headers": client.headers},
    ])
    figures: list[Figure] = []
    first = min(options.levels)
    one = f"{first} client{'s' if first > 1 else ''}"
    figures.append(Figure(GROUP, f"trivial route (gateway and worker, no AWS call), {one} p50",
                          results[f"trivial@{first}"]["p50_ms"], "ms", target_op="<=", target=5.0))
    figures.append(Figure(GROUP, f"static file (gateway only), {one} p50",
                          results[f"static@{first}"]["p50_ms"], "ms", baseline=results[f"trivial@{first}"]["p50_ms"],
                          baseline_name="trivial route"))
    for name in ("device list", "day view"):
        made = calls[name]
        figures.append(Figure(GROUP, f"{name}, AWS calls/request", sum(made["calls_per_request"].values()),
                              baseline=sum(calls["trivial"]["calls_per_request"].values()),
                              baseline_name="trivial route", note=json.dumps(made["calls_per_request"])))
        figures.append(Figure(GROUP, f"{name}, in-process time/request", made["median_ms"], "ms",
                              baseline=calls["trivial"]["median_ms"], baseline_name="trivial route",
                              note="the handler called in one process, no gateway or worker pool"))
        for clients in options.levels:
            measured = results[f"{name}@{clients}"]
            trivial = results[f"trivial@{clients}"]
            label = f"{name}, {clients} client{'s' if clients > 1 else ''}"
            figures.append(Figure(GROUP, f"{label} p50", measured["p50_ms"], "ms", baseline=trivial["p50_ms"],
                                  baseline_name="trivial route"))
            last = clients == max(options.levels)
            figures.append(Figure(GROUP, f"{label} p99", measured["p99_ms"], "ms", baseline=trivial["p99_ms"],
                                  baseline_name="trivial route", target_op="<=" if last else None,
                                  target=400.0 if last else None))
            figures.append(Figure(GROUP, f"{label} requests/s", measured["per_s"], "/s", baseline=trivial["per_s"],
                                  baseline_name="trivial route", target_op=">=" if last else None,
                                  target=0.5 if last else None, on_ratio=last))
            if measured["unexpected"]:
                figures.append(Figure(GROUP, f"{label} failed requests", float(measured["unexpected"]),
                                      target_op="<=", target=0.0))
    return figures, {"options": options.__dict__, "results": results, "calls": calls,
                     "errors": runtime.errors(errors_from)}
