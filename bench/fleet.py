"""Fleet scale: the fleet page, the device list, a name search, the silent check and one alert's
delivery at 1,000 and at 10,000 meters, each figure beside the same one at 1,000 (target: within
1.5x); and the bulk import that loads them (target: 10,000 meters in the fleet within 60 s).

The meters are imported as an admin imports them (`POST /api/devices/import`, CSV), timed until
every one is in the fleet view, then grown from the first size to the second in the same
runtime. Each meter then sends one reading through the readings queue (`SILENT` meters of each
load last reported an hour ago), and as many open client sockets as meters plus ADMINS admin
sockets are written beside them (connection rows and presence items, as the connect route keeps
them). At each size: the first page of `GET /api/fleet`, a
device-list page and a name search at 8 concurrent clients (p50, p99), the AWS calls of each
(through the app's handler, `bench.probe`), one whole silent check (calls, seconds, alerts raised)
and one alert's delivery by the notifications consumer (calls). Last, the fleet page in the browser
(`bench.browser`, the built frontend in headless Chromium): an admin signed in through the login
page opens it PAGE_LOADS times; the median time from the navigation's start until its first screen
and cards are complete (the table's first row on the screen, the devices card showing the whole
fleet, the four state cards counted), beside the same at 1,000 (target: within 1.5x), and the most
`/api/` requests any load made until then (target: at most 2 to `/api/fleet` whatever the size;
all of them reported beside).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from bench import browser, probe
from bench.load import ProducerStats, send_batch
from bench.report import Figure
from bench.rest import hammer
from bench.runtime import BenchError, BenchRuntime, wait_until

GROUP = "fleet"
SILENT = 10
SHARDS = 8
PAGE_LOADS = 5
FLEET_REQUESTS = 2  # the fleet page's first screen, whatever the fleet's size


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...] = (1_000, 10_000)
    clients: int = 8
    seconds: float = 5.0
    page_loads: int = PAGE_LOADS


HEADER = "serial,name,address,max_hourly_kwh,timezone,owners"
CONNECTIONS = {1_000: 1_000, 10_000: 10_000}  # open client sockets kept at each fleet size
ADMINS = 3


def import_meters(runtime: BenchRuntime, admin: Any, first: int, count: int
                  ) -> tuple[dict[int, str], float, float]:
    """`count` meters numbered from `first`, imported as an admin would (`POST /api/devices/import`,
    as many rows a request as it takes); their ids by number, and the seconds from the first
    request until the last was answered and until every one is in the fleet view (known to
    monitoring, so to ingestion)."""
    from chalicelib.devices.importing import MAX_ROWS

    started = time.perf_counter()
    ids: dict[int, str] = {}
    for start in range(first, first + count, MAX_ROWS):
        numbers = range(start, min(first + count, start + MAX_ROWS))
        body = "\n".join([HEADER, *(f"SN-{i:06d},Meter {i:06d},,2,UTC," for i in numbers)])
        response = requests.post(f"{runtime.rest_url}/devices/import", data=body.encode(), timeout=120,
                                 headers={**admin.headers, "Content-Type": "text/csv"})
        if response.status_code != 200 or len(response.json()["created"]) != len(numbers):
            raise BenchError(f"the import answered {response.status_code}: {response.text[:500]}")
        ids.update({int(row["serial"][3:]): row["device_id"] for row in response.json()["created"]})
    answered = time.perf_counter() - started

    def in_fleet() -> bool:
        summary = requests.get(f"{runtime.rest_url}/fleet?limit=1", headers=admin.headers, timeout=30).json()
        return int(summary["summary"]["devices"]) >= first + count

    wait_until(in_fleet, timeout_s=600, what=f"{first + count:,} meters in the fleet", interval_s=0.2)
    return ids, answered, time.perf_counter() - started


def send_readings(runtime: BenchRuntime, ids: dict[int, str], first: int) -> None:
    """One reading a meter through the readings queue, counted by the runtime's own ingestion:
    two minutes ago, but an hour ago for the first SILENT of a load (sent last, so that the
    measured check, right after, is the one that finds them); returns once the queue is empty."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    bodies = [(i - first < SILENT, json.dumps({
        "device_id": device_id, "measurement_value": 0.2,
        "timestamp": (now - (dt.timedelta(hours=1) if i - first < SILENT else dt.timedelta(minutes=2))).isoformat()}))
        for i, device_id in sorted(ids.items())]
    ordered = [body for quiet, body in bodies if not quiet] + [body for quiet, body in bodies if quiet]
    sqs, url, stats = runtime.client("sqs"), runtime.queue_url("readings"), ProducerStats()
    for start in range(0, len(ordered), 10):
        send_batch(sqs, url, ordered[start:start + 10], stats)
    runtime.wait_drained(("readings",))


def _connections(first: int, count: int, now: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`count` open client sockets (one a client, numbered from `first`) and ADMINS admin sockets,
    as the connect route keeps them: connection rows and presence items."""
    expires = str(int(now) + 3600)
    rows, presence = [], []
    admins: dict[str, Any] = {}
    for i in range(first, first + count):
        connection_id, user_id = f"bench-conn-{i:06d}=", f"bench-client-{i:06d}"
        rows.append({"connection_id": {"S": connection_id}, "user_id": {"S": user_id}, "role": {"S": "client"},
                     "connected_at": {"N": str(now)}, "expires_at": {"N": expires}})
        presence.append({"user_id": {"S": user_id}, "conns": {"M": {connection_id: {"M": {
            "u": {"S": user_id}, "r": {"S": "client"}, "e": {"N": expires}}}}}})
    for n in range(ADMINS):
        connection_id, user_id = f"bench-admin-{n}=", f"bench-admin-{n}"
        rows.append({"connection_id": {"S": connection_id}, "user_id": {"S": user_id}, "role": {"S": "admin"},
                     "connected_at": {"N": str(now)}, "expires_at": {"N": expires}})
        admins[connection_id] = {"M": {"u": {"S": user_id}, "r": {"S": "admin"}, "e": {"N": expires}}}
    presence.append({"user_id": {"S": "role:admin"}, "conns": {"M": admins}})
    return rows, presence


def put_all(runtime: BenchRuntime, logical: str, items: list[dict[str, Any]]) -> None:
    dynamodb, table = runtime.client("dynamodb"), runtime.name(logical)
    for start in range(0, len(items), 25):
        requests_ = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
        while requests_:
            left = dynamodb.batch_write_item(RequestItems={table: requests_}).get("UnprocessedItems", {})
            requests_ = left.get(table, [])


def load(runtime: BenchRuntime, admin: Any, first: int, count: int, sockets: tuple[int, int]) -> dict[str, Any]:
    """`count` more meters, numbered from `first`, through the import; their hours written beside
    them; `sockets` (first, count) more open client sockets and the admins' ones (again)."""
    ids, answered, seconds = import_meters(runtime, admin, first, count)
    send_readings(runtime, ids, first)
    rows, presence = _connections(*sockets, time.time())
    put_all(runtime, "connections", rows)
    put_all(runtime, "presence", presence)
    return {"ids": ids, "import_seconds": seconds, "import_answered_s": answered, "import_rows_per_s": count / seconds}


def measure(runtime: BenchRuntime, options: Options, admin: Any, alerted: str) -> dict[str, Any]:
    base = runtime.rest_url
    routes = {
        "fleet page": (f"{base}/fleet?limit=50", {"limit": "50"}, "/fleet"),
        "device list page": (f"{base}/devices?limit=50", {"limit": "50"}, "/devices"),
        "name search": (f"{base}/devices?limit=50&q=meter%2000000", {"limit": "50", "q": "meter 00000"}, "/devices"),
    }
    # The alert first: the silent check's alerts reach the admins' sockets too (through the runtime's
    # consumer), which, never opened, are then found gone and forgotten. Then the silent check: the
    # runtime's own schedule (every minute) would otherwise find the load's silent meters before it.
    found: dict[str, Any] = {"alert": probe.run_alert(runtime, alerted)}
    found["silent check"] = probe.run_silent(runtime)
    for name, (url, _query, _path) in routes.items():
        found[name] = hammer(url, admin.headers, options.clients, options.seconds, 50_000, 200)
    calls = probe.run_rest(runtime, [{"name": name, "path": path, "query": query, "headers": admin.headers}
                                     for name, (_url, query, path) in routes.items()], repeat=5)
    for name in routes:
        found[name]["calls"] = calls[name]["calls_per_request"]
    devices = requests.get(f"{base}/fleet?limit=1", headers=admin.headers, timeout=30).json()["summary"]["devices"]
    found["browser"] = browser.fleet_page_loads(runtime, admin, int(devices), options.page_loads)
    return found


def silent_alerts(runtime: BenchRuntime, ids: dict[int, str], first: int) -> int:
    """How many of a load's SILENT quiet meters have their silent-meter alert stored (by whichever
    check found them)."""
    dynamodb = runtime.client("dynamodb")
    stored = 0
    for i in range(first, first + SILENT):
        items = dynamodb.query(TableName=runtime.name("alerts"), IndexName="by_device",
                               KeyConditionExpression="device_id = :d",
                               ExpressionAttributeValues={":d": {"S": ids[i]}})["Items"]
        stored += sum(1 for item in items if item["kind"]["S"] == "silent_meter")
    return stored


def run(runtime: BenchRuntime, options: Options, log: Any = print) -> tuple[list[Figure], dict[str, Any]]:
    admin = runtime.admin()
    results: dict[int, dict[str, Any]] = {}
    loaded = sockets = 0
    for size in options.sizes:
        log(f"fleet: importing to {size:,} meters")
        connections = CONNECTIONS.get(size, size)
        loading = load(runtime, admin, loaded, size - loaded, (sockets, connections - sockets))
        first, loaded, sockets = loaded, size, connections
        log(f"fleet: measuring at {size:,} meters")
        results[size] = measure(runtime, options, admin, loading["ids"][first + SILENT])
        results[size]["silent alerts stored"] = silent_alerts(runtime, loading["ids"], first)
        results[size]["import"] = {"rows": size - first, "seconds": loading["import_seconds"],
                                   "answered_s": loading["import_answered_s"],
                                   "rows_per_s": loading["import_rows_per_s"]}
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
    calls = [sum(results[s]["alert"]["calls"].values()) for s in (small, large)]
    figures.append(Figure(GROUP, f"one alert's delivery, AWS calls, {ADMINS} admins and {CONNECTIONS.get(large, large):,} "
                          "client sockets open", calls[1], baseline=calls[0],
                          baseline_name=f"the same with {CONNECTIONS.get(small, small):,}", target_op="<=", target=1.5,
                          on_ratio=True))
    imports = [results[s]["import"] for s in options.sizes]
    seconds = sum(i["seconds"] for i in imports)
    figures.append(Figure(GROUP, f"bulk import of {large:,} meters until all are in the fleet", seconds, "s",
                          target_op="<=", target=60, decimals=1))
    figures.append(Figure(GROUP, f"bulk import, rows/s ({imports[-1]['rows']:,} rows)", imports[-1]["rows_per_s"],
                          "rows/s", baseline=imports[0]["rows_per_s"],
                          baseline_name=f"the first {imports[0]['rows']:,}", decimals=0))
    pages = [results[s]["browser"] for s in (small, large)]
    figures.append(Figure(GROUP, f"fleet page in the browser until its first screen and cards are complete, median "
                          f"of {options.page_loads}, {large:,} meters", pages[1]["ms"], "ms", baseline=pages[0]["ms"],
                          baseline_name=f"the same at {small:,}", target_op="<=", target=1.5, on_ratio=True))
    figures.append(Figure(GROUP, f"fleet page in the browser, /api/fleet requests until complete, {large:,} meters",
                          pages[1]["fleet_requests"], baseline=pages[0]["fleet_requests"],
                          baseline_name=f"the same at {small:,}", target_op="<=", target=FLEET_REQUESTS))
    figures.append(Figure(GROUP, f"fleet page in the browser, /api requests until complete, {large:,} meters",
                          pages[1]["api_requests"], baseline=pages[0]["api_requests"],
                          baseline_name=f"the same at {small:,}"))
    stored = [results[s]["silent alerts stored"] for s in (small, large)]
    figures.append(Figure(GROUP, f"silent-meter alerts stored, of {SILENT} silent meters a load", min(stored),
                          target_op=">=", target=SILENT))
    return figures, {"options": options.__dict__, "results": {str(k): v for k, v in results.items()}}
