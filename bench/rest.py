"""REST: latency and requests/s of the device list and a day view at 1, 8 and 32 concurrent clients;
the day view and a week by hour with a time-of-use tariff beside the same with a flat one.

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
DAY = dt.date(2026, 6, 15)  # a Monday
WEEK = 7  # days of readings ending on DAY, for the range view (a weekend among them)
FLAT = {"tariff_per_kwh": 0.25, "currency": "EUR"}
TIME_OF_USE = {"tariffs": [
    {"from": "2026-01-01", "currency": "EUR",
     "rates": [{"start": "00:00", "price_per_kwh": 0.12}, {"start": "07:00", "price_per_kwh": 0.22},
               {"start": "17:00", "price_per_kwh": 0.35}, {"start": "21:00", "price_per_kwh": 0.12}],
     "weekend_rates": [{"start": "00:00", "price_per_kwh": 0.10}]},
    {"from": "2026-06-12", "currency": "EUR",  # a change of tariff inside the week
     "rates": [{"start": "00:00", "price_per_kwh": 0.14}, {"start": "17:00", "price_per_kwh": 0.38}],
     "weekend_rates": [{"start": "00:00", "price_per_kwh": 0.11}]},
]}


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


def fill_day(runtime: BenchRuntime, device_id: str, days: int = 1) -> None:
    """Full days of readings ending on DAY (the day view's, and the range view's), counted before the
    measurement starts."""
    first = dt.datetime.combine(DAY - dt.timedelta(days=days - 1), dt.time(0), tzinfo=dt.UTC)
    bodies = interval_readings([device_id], first, READINGS_PER_DAY * days)
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
        return sum(int(i["reading_count"]["N"]) for i in items) == READINGS_PER_DAY * days

    wait_until(counted, 300, "the day view's readings counted", interval_s=0.5)


def run(runtime: BenchRuntime, options: Options, log: Any = print) -> tuple[list[Figure], dict[str, Any]]:
    client: Account = runtime.new_client("rest")
    devices = runtime.create_devices(options.devices, [client.id], 10.0, prefix="rest")
    flat, time_of_use = devices[0], devices[1]
    admin = runtime.admin()
    for device_id, tariff in ((flat, FLAT), (time_of_use, TIME_OF_USE)):
        answer = requests.put(f"{runtime.rest_url}/devices/{device_id}", json=tariff, headers=admin.headers, timeout=60)
        if answer.status_code != 200:
            raise BenchError(f"setting the tariff of {device_id} failed: {answer.status_code} {answer.text[:200]}")
        fill_day(runtime, device_id, WEEK)
    base = runtime.rest_url
    week = f"from={(DAY - dt.timedelta(days=WEEK - 1)).isoformat()}&to={DAY.isoformat()}&granularity=hour"
    routes = {
        "trivial": (f"{base}/auth/me", {}, 401),
        "static": (base.removesuffix("/api") + "/runtime-config.json", {}, 200),
        "device list": (f"{base}/devices", client.headers, 200),
        "day view": (f"{base}/devices/{flat}/consumption?date={DAY.isoformat()}", client.headers, 200),
        "day view, time-of-use tariff": (f"{base}/devices/{time_of_use}/consumption?date={DAY.isoformat()}",
                                         client.headers, 200),
        "week by hour": (f"{base}/devices/{flat}/consumption?{week}", client.headers, 200),
        "week by hour, time-of-use tariff": (f"{base}/devices/{time_of_use}/consumption?{week}", client.headers, 200),
    }
    for name in ("day view", "day view, time-of-use tariff"):
        checked = requests.get(routes[name][0], headers=client.headers, timeout=30).json()
        if sum(h["readings"] for h in checked["hours"]) != READINGS_PER_DAY or checked["cost"] is None:
            raise BenchError(f"the {name} does not show the day's readings and cost")
    for name in ("week by hour", "week by hour, time-of-use tariff"):
        checked = requests.get(routes[name][0], headers=client.headers, timeout=30).json()
        if sum(p["kwh"] is not None for p in checked["points"]) != 24 * WEEK or checked["cost"] is None:
            raise BenchError(f"the {name} does not show the week's hours and cost")
    results: dict[str, dict[str, Any]] = {}
    errors_from = runtime.mark()
    for clients in options.levels:
        log(f"rest: {clients} concurrent client(s)")
        for name, (url, headers, status) in routes.items():
            cpu = CpuMeter(runtime)
            measured = hammer(url, headers, clients, options.seconds, options.max_requests, status)
            results[f"{name}@{clients}"] = measured | {"cpu": cpu.stop()}
    week_query = {"from": (DAY - dt.timedelta(days=WEEK - 1)).isoformat(), "to": DAY.isoformat(),
                  "granularity": "hour"}
    calls = probe.run_rest(runtime, [
        {"name": "trivial", "path": "/auth/me"},
        {"name": "device list", "path": "/devices", "headers": client.headers},
        {"name": "day view", "path": f"/devices/{flat}/consumption", "query": {"date": DAY.isoformat()},
         "headers": client.headers},
        {"name": "day view, time-of-use tariff", "path": f"/devices/{time_of_use}/consumption",
         "query": {"date": DAY.isoformat()}, "headers": client.headers},
        {"name": "week by hour", "path": f"/devices/{flat}/consumption", "query": week_query,
         "headers": client.headers},
        {"name": "week by hour, time-of-use tariff", "path": f"/devices/{time_of_use}/consumption",
         "query": week_query, "headers": client.headers},
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
    figures += tariff_figures(results, calls, options.levels)
    figures += pricing_figures(pricing_in_process())
    return figures, {"options": options.__dict__, "results": results, "calls": calls,
                     "errors": runtime.errors(errors_from)}


def tariff_figures(results: dict[str, dict[str, Any]], calls: dict[str, Any],
                   levels: tuple[int, ...]) -> list[Figure]:
    """A request's cost with a time-of-use tariff beside the same request with a flat one (same run)."""
    figures: list[Figure] = []
    for flat in ("day view", "week by hour"):
        tou = f"{flat}, time-of-use tariff"
        figures.append(Figure(GROUP, f"{tou}, in-process time/request", calls[tou]["median_ms"], "ms",
                              baseline=calls[flat]["median_ms"], baseline_name=f"{flat}, flat tariff",
                              note="the handler called in one process, no gateway or worker pool"))
        figures.append(Figure(GROUP, f"{tou}, AWS calls/request", sum(calls[tou]["calls_per_request"].values()),
                              baseline=sum(calls[flat]["calls_per_request"].values()),
                              baseline_name=f"{flat}, flat tariff", target_op="<=", target=1.0, on_ratio=True))
        if flat == "week by hour":
            figures.append(Figure(GROUP, f"{flat}, flat tariff, in-process time/request", calls[flat]["median_ms"],
                                  "ms", baseline=calls["day view"]["median_ms"], baseline_name="day view"))
        for clients in levels:
            label = f"{clients} client{'s' if clients > 1 else ''}"
            measured, baseline = results[f"{tou}@{clients}"], results[f"{flat}@{clients}"]
            figures.append(Figure(GROUP, f"{tou}, {label} p50", measured["p50_ms"], "ms",
                                  baseline=baseline["p50_ms"], baseline_name=f"{flat}, flat tariff"))
            figures.append(Figure(GROUP, f"{tou}, {label} requests/s", measured["per_s"], "/s",
                                  baseline=baseline["per_s"], baseline_name=f"{flat}, flat tariff"))
            if measured["unexpected"]:
                figures.append(Figure(GROUP, f"{tou}, {label} failed requests", float(measured["unexpected"]),
                                      target_op="<=", target=0.0))
    return figures


@dataclass(frozen=True)
class _Meter:
    id: str = "priced"
    timezone: str = "Europe/Bucharest"
    max_hourly_kwh: float = 5.0
    tariff_per_kwh: float | None = 0.25
    currency: str | None = "EUR"
    tariffs: tuple[Any, ...] = ()


class _Hours:
    """Stored hours in memory: the history's own work, without the table's."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def between(self, device_id: str, first_hour: str, last_hour: str) -> list[Any]:
        return [h for h in self.items if first_hour <= h.hour_start <= last_hour]


def pricing_in_process(repeat: int = 5) -> dict[str, dict[str, float]]:
    """Milliseconds per view computed in-process over two years of stored hours, flat beside time of use."""
    from decimal import Decimal

    from pydantic import TypeAdapter

    from chalicelib.monitoring.domain import HourTotal
    from chalicelib.monitoring.history import History
    from chalicelib.monitoring.readings import hour_key
    from chalicelib.tariffs import Tariffs

    start = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    history = History(_Hours([HourTotal("priced", hour_key(start + dt.timedelta(hours=i)), Decimal("0.123"), 6)
                              for i in range(24 * 731)]))  # type: ignore[arg-type]
    meters = {"flat": _Meter(), "time-of-use": _Meter(tariffs=tuple(
        TypeAdapter(Tariffs).validate_python(TIME_OF_USE["tariffs"])))}
    views = {
        "day view": lambda m: history.day(m, DAY),
        "62 days by hour": lambda m: history.range_view(m, dt.date(2026, 4, 15), dt.date(2026, 6, 15), "hour"),
        "731 days by day": lambda m: history.range_view(m, dt.date(2025, 6, 1), dt.date(2027, 5, 31), "day"),
    }
    timings: dict[str, dict[str, float]] = {}
    for view, compute in views.items():
        timings[view] = {}
        for tariff, meter in meters.items():
            compute(meter)
            best = min(_timed(compute, meter) for _ in range(repeat))
            timings[view][tariff] = best
    return timings


def _timed(compute: Any, meter: _Meter) -> float:
    started = time.perf_counter()
    compute(meter)
    return (time.perf_counter() - started) * 1000


def pricing_figures(timings: dict[str, dict[str, float]]) -> list[Figure]:
    return [Figure(GROUP, f"{view}, time-of-use tariff, computed in-process (best of 5)", t["time-of-use"], "ms",
                   baseline=t["flat"], baseline_name="flat tariff", target_op="<=", target=1.25, on_ratio=True,
                   note="the history's work over two years of stored hours, without AWS calls")
            for view, t in timings.items()]
