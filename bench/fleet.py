"""Fleet scale: the fleet page, the device list, a name search and the silent check at 1,000 and at
10,000 meters, each figure beside the same one at 1,000 (target: within 1.5x).

The fleet is loaded into the tables the way the app keeps it (devices listed by name, monitoring's
replica with each meter's state and the fleet's count, an hour of today per meter with its silence
deadline), in batch writes, then grown from the first size to the second in the same runtime;
`SILENT` meters of each load last reported an hour ago. At each size: the first page of
`GET /api/fleet`, a device-list page and a name search at 8 concurrent clients (p50, p99), the AWS
calls of each (through the app's handler, `bench.probe`), and one whole silent check (calls,
seconds, alerts raised).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bench import probe
from bench.report import Figure
from bench.rest import hammer
from bench.runtime import BenchRuntime

GROUP = "fleet"
SILENT = 10
SHARDS = 8


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...] = (1_000, 10_000)
    clients: int = 8
    seconds: float = 5.0


def _items(first: int, count: int, now: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    import zlib

    hour = now.strftime("%Y-%m-%dT%H:00:00Z")
    tables: dict[str, list[dict[str, Any]]] = {"devices": [], "meters": [], "hourly-totals": []}
    for i in range(first, first + count):
        device_id, name = f"fleet-{i:06d}", f"Meter {i:06d}"
        quiet = i - first < SILENT
        last = now - (dt.timedelta(hours=1) if quiet else dt.timedelta(minutes=2))
        listed = {"listing": {"S": "all"}, "name_key": {"S": f"{name.lower()}\x00{device_id}"}}
        common = {"name": {"S": name}, "max_hourly_kwh": {"N": "2"}, "timezone": {"S": "UTC"}, **listed}
        tables["devices"].append({"id": {"S": device_id}, "created_at": {"S": "2026-01-01T00:00:00+00:00"},
                                  "version": {"N": "1"}, "deleted": {"BOOL": False}, **common})
        tables["meters"].append({"device_id": {"S": device_id}, "entity_version": {"N": "1"},
                                 "deleted": {"BOOL": False}, **common})
        stamp = last.strftime("%Y-%m-%dT%H:%M:%SZ")
        deadline = (last + dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        tables["hourly-totals"].append({
            "device_id": {"S": device_id}, "hour_start": {"S": last.strftime("%Y-%m-%dT%H:00:00Z") if quiet else hour},
            "total_kwh": {"N": "0.2"}, "reading_count": {"N": "1"}, "seen": {"SS": [stamp]},
            "vals": {"SS": [f"{stamp}=0.2"]}, "silent_at": {"S": deadline},
            "silent_shard": {"S": str(zlib.crc32(device_id.encode()) % SHARDS)}})
    return tables


def load(runtime: BenchRuntime, first: int, count: int, total: int) -> None:
    """`count` more meters, numbered from `first`, and the fleet's count set to `total`."""
    dynamodb = runtime.client("dynamodb")
    for logical, items in _items(first, count, dt.datetime.now(dt.UTC)).items():
        table = runtime.name(logical)
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
            while requests:
                left = dynamodb.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
                requests = left.get(table, [])
    dynamodb.put_item(TableName=runtime.name("meters"),
                      Item={"device_id": {"S": "#fleet"}, "devices": {"N": str(total)}})


def measure(runtime: BenchRuntime, options: Options, admin: Any) -> dict[str, Any]:
    base = runtime.rest_url
    routes = {
        "fleet page": (f"{base}/fleet?limit=50", {"limit": "50"}, "/fleet"),
        "device list page": (f"{base}/devices?limit=50", {"limit": "50"}, "/devices"),
        "name search": (f"{base}/devices?limit=50&q=meter%2000000", {"limit": "50", "q": "meter 00000"}, "/devices"),
    }
    # The check first: the runtime's own schedule (every minute) would otherwise find the load's
    # silent meters before it.
    found: dict[str, Any] = {"silent check": probe.run_silent(runtime)}
    for name, (url, _query, _path) in routes.items():
        found[name] = hammer(url, admin.headers, options.clients, options.seconds, 50_000, 200)
    calls = probe.run_rest(runtime, [{"name": name, "path": path, "query": query, "headers": admin.headers}
                                     for name, (_url, query, path) in routes.items()], repeat=5)
    for name in routes:
        found[name]["calls"] = calls[name]["calls_per_request"]
    return found


def silent_alerts(runtime: BenchRuntime, first: int) -> int:
    """How many of a load's SILENT quiet meters have their silent-meter alert stored (by whichever
    check found them)."""
    dynamodb = runtime.client("dynamodb")
    stored = 0
    for i in range(first, first + SILENT):
        items = dynamodb.query(TableName=runtime.name("alerts"), IndexName="by_device",
                               KeyConditionExpression="device_id = :d",
                               ExpressionAttributeValues={":d": {"S": f"fleet-{i:06d}"}})["Items"]
        stored += sum(1 for item in items if item["kind"]["S"] == "silent_meter")
    return stored


def run(runtime: BenchRuntime, options: Options, log: Any = print) -> tuple[list[Figure], dict[str, Any]]:
    admin = runtime.admin()
    results: dict[int, dict[str, Any]] = {}
    loaded = 0
    for size in options.sizes:
        log(f"fleet: loading to {size:,} meters")
        load(runtime, loaded, size - loaded, size)
        first, loaded = loaded, size
        log(f"fleet: measuring at {size:,} meters")
        results[size] = measure(runtime, options, admin)
        results[size]["silent alerts stored"] = silent_alerts(runtime, first)
    small, large = options.sizes[0], options.sizes[-1]
    figures: list[Figure] = []
    for route in ("fleet page", "device list page", "name search"):
        for stat in ("p50_ms", "p99_ms"):
            figures.append(Figure(GROUP, f"{route}, {stat[:3]} at {options.clients} clients, {large:,} meters",
                                  results[large][route][stat], "ms", baseline=results[small][route][stat],
                                  baseline_name=f"the same at {small:,}", target_op="<=", target=1.5, on_ratio=True))
        calls = [sum(results[s][route]["calls"].values()) for s in (small, large)]
        figures.append(Figure(GROUP, f"{route}, AWS calls a request, {large:,} meters", calls[1], baseline=calls[0],
                              baseline_name=f"the same at {small:,}", target_op="<=", target=1.5, on_ratio=True))
    for key, unit in (("seconds", "s"),):
        values = [results[s]["silent check"][key] for s in (small, large)]
        figures.append(Figure(GROUP, f"silent check ({SILENT} silent), {large:,} meters", values[1], unit,
                              baseline=values[0], baseline_name=f"the same at {small:,}", target_op="<=",
                              target=1.5, on_ratio=True, decimals=3))
    calls = [sum(results[s]["silent check"]["calls"].values()) for s in (small, large)]
    figures.append(Figure(GROUP, f"silent check ({SILENT} silent), AWS calls, {large:,} meters", calls[1],
                          baseline=calls[0], baseline_name=f"the same at {small:,}", target_op="<=", target=1.5,
                          on_ratio=True))
    stored = [results[s]["silent alerts stored"] for s in (small, large)]
    figures.append(Figure(GROUP, f"silent-meter alerts stored, of {SILENT} silent meters a load", min(stored),
                          target_op=">=", target=SILENT))
    return figures, {"options": options.__dict__, "results": {str(k): v for k, v in results.items()}}
