"""WebSocket fan-out: one alert to every one of a user's 500 open sockets.

Measured from sending the crossing reading (the whole path: readings consumer, notifications
consumer, its parallel posts) and from putting the `alert.raised` message straight on the
notifications queue (the notifications consumer alone), until the last socket has the frame.
The baseline is the same sockets receiving a frame that one client posts to each of them
through the management API, one after the other.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import requests

from bench.report import Figure
from bench.runtime import BenchError, BenchRuntime, wait_until
from bench.sockets import Swarm

GROUP = "fan-out"
FIRST_HOUR = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Options:
    sockets: int = 500
    repetitions: int = 3
    timeout_s: float = 120.0


def hour_key(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:00:00Z")


def spread(sent_at: float, arrivals: list[float], expected: int) -> dict[str, Any]:
    """From the send: when the first, the median and the last socket had the frame (ms)."""
    times = sorted((a - sent_at) * 1000 for a in arrivals)
    return {
        "received": len(times), "expected": expected,
        "first_ms": times[0] if times else None,
        "median_ms": statistics.median(times) if times else None,
        "all_ms": times[-1] if len(times) >= expected else None,
    }


def run(runtime: BenchRuntime, options: Options, log: Any = print) -> tuple[list[Figure], dict[str, Any]]:
    user = runtime.new_client("fan")
    device = runtime.create_devices(1, [user.id], 1.0, prefix="fan")[0]
    sqs = runtime.own_client("sqs")
    readings_url = runtime.queue_url("readings")
    notifications_url = runtime.queue_url("notifications")
    log(f"fan-out: opening {options.sockets} sockets")
    swarm = Swarm(runtime.socket_url(user), options.sockets)
    errors_from = runtime.mark()
    runs: dict[str, list[dict[str, Any]]] = {"reading": [], "notification": [], "direct": []}
    try:
        open_s = swarm.open()

        def registered() -> list[str] | None:
            found = runtime.connection_ids(user.id)
            return found if len(found) >= options.sockets else None

        ids = wait_until(registered, 60, f"{options.sockets} registered connections")
        with requests.Session() as session:
            for rep in range(options.repetitions):
                log(f"fan-out: round {rep + 1} of {options.repetitions}")
                # Baseline: one client posts the frame to every socket itself.
                data = json.dumps({"type": "bench.probe", "n": rep}).encode()
                sent_at = time.perf_counter()
                refused = sum(runtime.post_to_connection(session, cid, data) != 200 for cid in ids)
                posted_ms = (time.perf_counter() - sent_at) * 1000
                arrivals = swarm.wait_all(f"probe:{rep}", options.timeout_s)
                runs["direct"].append(spread(sent_at, arrivals, options.sockets) | {"posting_ms": posted_ms,
                                                                                    "refused": refused})
                time.sleep(1.0)
                # The whole path, from the reading that crosses the limit.
                hour = FIRST_HOUR + dt.timedelta(hours=2 * rep)
                body = json.dumps({"timestamp": (hour + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "device_id": device, "measurement_value": 2.0})
                sent_at = time.perf_counter()
                sqs.send_message(QueueUrl=readings_url, MessageBody=body)
                arrivals = swarm.wait_all(f"alert:{device}:{hour_key(hour)}", options.timeout_s)
                runs["reading"].append(spread(sent_at, arrivals, options.sockets))
                time.sleep(1.0)
                # The notifications consumer alone, from its queue.
                hour = FIRST_HOUR + dt.timedelta(hours=2 * rep + 1)
                alert = {"id": f"{device}:{hour_key(hour)}", "kind": "over_consumption", "device_id": device,
                         "device_name": f"Bench {device}", "hour_start": hour_key(hour), "total_kwh": 2.0,
                         "max_hourly_kwh": 1.0, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
                sent_at = time.perf_counter()
                sqs.send_message(QueueUrl=notifications_url,
                                 MessageBody=json.dumps({"type": "alert.raised", "alert": alert}))
                arrivals = swarm.wait_all(f"alert:{alert['id']}", options.timeout_s)
                runs["notification"].append(spread(sent_at, arrivals, options.sockets))
                time.sleep(1.0)
    finally:
        swarm.close()
    incomplete = [k for k, rs in runs.items() for r in rs if r["all_ms"] is None]
    if incomplete:
        raise BenchError(f"some sockets never got the frame ({', '.join(sorted(set(incomplete)))}): {runs}")

    def median_all(kind: str) -> float:
        return float(statistics.median(r["all_ms"] for r in runs[kind]))

    direct = median_all("direct")
    figures = [
        Figure(GROUP, f"{options.sockets} sockets, from the crossing reading", median_all("reading"), "ms",
               baseline=direct, baseline_name="one client posting to each", target_op="<=", target=1000.0),
        Figure(GROUP, f"{options.sockets} sockets, from the alert.raised message", median_all("notification"), "ms",
               baseline=direct, baseline_name="one client posting to each"),
    ]
    details = {"options": options.__dict__, "open_s": open_s, "runs": runs, "errors": runtime.errors(errors_from)}
    return figures, details
