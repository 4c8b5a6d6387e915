"""Readings to send and the producers that send them: paced by queue depth, or at a fixed rate.

Readings come from the simulator's daily pattern and in its message format. They are ordered
as meters send them live: every device's reading of one 10-minute interval, then the next
interval's, so a batch of ten holds ten devices (the consumer's worst case for grouping).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from simulator.messages import Reading
from simulator.patterns import SyntheticMeter

INTERVAL = dt.timedelta(minutes=10)
READINGS_PER_DAY = 24 * 6
BASE_LOAD_KWH = 0.08  # per 10 minutes: ~0.5 kWh an hour, a household


def interval_readings(device_ids: Sequence[str], first: dt.datetime, intervals: int, seed: str = "bench",
                      every: dt.timedelta = INTERVAL) -> list[str]:
    """Message bodies for `intervals` consecutive intervals of every device (`every` apart), interval by interval."""
    meters = [SyntheticMeter(device_id, BASE_LOAD_KWH, seed) for device_id in device_ids]
    bodies: list[str] = []
    for step in range(intervals):
        start = first + step * every
        for meter in meters:
            kwh = meter.kwh_at(start) or 0.0
            bodies.append(Reading(start, meter.device_id, kwh).to_message())
    return bodies


SHAPES = ("interleaved", "device-ordered")


def batch_messages(bodies: Sequence[str], per_message: int, shape: str) -> list[str]:
    """Reading bodies (interval by interval) as batch messages `{"readings": [...]}` of `per_message` each.

    interleaved: a message holds consecutive readings as meters send them live, many devices
    each (the real-time shape); device-ordered: consecutive readings of one device (backfills, CSV).
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}")
    if per_message <= 1:
        return list(bodies)
    ordered = list(bodies)
    if shape == "device-ordered":
        ordered.sort(key=lambda body: json.loads(body)["device_id"])  # stable: time order within a device
    return ['{"readings": [' + ", ".join(ordered[i:i + per_message]) + "]}"
            for i in range(0, len(ordered), per_message)]


def readings_in(body: str) -> int:
    """Readings a message carries."""
    data = json.loads(body)
    return len(data["readings"]) if isinstance(data, dict) and "readings" in data else 1


@dataclass
class ProducerStats:
    """What a producer did: requests made, time spent waiting for the queue to drain."""

    sent: int = 0
    send_requests: int = 0
    depth_checks: int = 0
    waited_s: float = 0.0
    first_send_at: float | None = None  # epoch seconds
    last_send_at: float | None = None
    max_depth_seen: int = 0
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "lock"}


def depth(sqs: Any, queue_url: str) -> int:
    """Messages waiting (not those in flight): what a producer must not let grow."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def send_batch(sqs: Any, queue_url: str, bodies: Sequence[str], stats: ProducerStats) -> None:
    """One SendMessageBatch of up to ten bodies, retrying the entries that failed (a few times)."""
    entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
    for _attempt in range(5):
        now = time.time()
        with stats.lock:
            if stats.first_send_at is None:
                stats.first_send_at = now
            stats.send_requests += 1
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        with stats.lock:
            stats.sent += len(entries) - len(failed)
            stats.last_send_at = time.time()
        if not failed:
            return
        wanted = {f["Id"] for f in failed}
        entries = [e for e in entries if e["Id"] in wanted]
        with stats.lock:
            stats.failures += len(entries)
        time.sleep(0.2)
    raise RuntimeError(f"{len(entries)} messages could not be sent")


def produce_paced(make_client: Any, queue_url: str, bodies: Sequence[str], *, max_depth: int, threads: int = 2,
                  timeout_s: float = 3600.0) -> ProducerStats:
    """Send every body in batches of ten from `threads` threads, waiting while the queue is deeper than `max_depth`.

    The bound keeps the consumer fed and the queue shallow, so the figure is the consumer's, not
    a backlog's (queue depth is measured on its own, in `bench.datasize`). A depth check is a
    request too, so the producers look only as often as the room they last saw may have run
    out: after sending about half of it.
    """
    stats = ProducerStats()
    batches = [bodies[i:i + 10] for i in range(0, len(bodies), 10)]
    next_batch = 0
    take = threading.Lock()
    deadline = time.monotonic() + timeout_s
    errors: list[BaseException] = []

    def run() -> None:
        nonlocal next_batch
        sqs = make_client("sqs")
        budget = 0  # batches this thread may send before it looks at the queue again
        try:
            while time.monotonic() < deadline:
                with take:
                    if next_batch >= len(batches):
                        return
                    batch = batches[next_batch]
                    next_batch += 1
                while budget <= 0 and time.monotonic() < deadline:
                    current = depth(sqs, queue_url)
                    with stats.lock:
                        stats.depth_checks += 1
                        stats.max_depth_seen = max(stats.max_depth_seen, current)
                    room = max_depth - current
                    if room >= 10:
                        budget = max(1, room // (20 * threads))
                        break
                    started = time.monotonic()
                    time.sleep(0.25)  # a full queue drains in batches; looking more often only loads the endpoint
                    with stats.lock:
                        stats.waited_s += time.monotonic() - started
                send_batch(sqs, queue_url, batch, stats)
                budget -= 1
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)

    workers = [threading.Thread(target=run, name=f"producer-{i}", daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(deadline - time.monotonic(), 0) + 5)
    if errors:
        raise RuntimeError(f"a producer failed: {errors[0]}") from errors[0]
    if stats.sent < len(bodies):
        raise RuntimeError(f"only {stats.sent} of {len(bodies)} readings sent in {timeout_s:.0f} s")
    return stats


class SteadyProducer:
    """Sends bodies at a fixed rate (batches of up to ten) in a thread, until stopped or out of bodies."""

    def __init__(self, make_client: Any, queue_url: str, bodies: Sequence[str], rate_per_s: float,
                 max_depth: int = 500) -> None:
        self._make_client = make_client
        self._queue_url = queue_url
        self._bodies = bodies
        self._rate = rate_per_s
        self._max_depth = max_depth
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-producer", daemon=True)
        self.stats = ProducerStats()
        self.error: BaseException | None = None

    def start(self) -> SteadyProducer:
        self._thread.start()
        return self

    def stop(self) -> ProducerStats:
        self._stop.set()
        self._thread.join(30)
        return self.stats

    def _run(self) -> None:
        sqs = self._make_client("sqs")
        # Ten per request when the rate allows, else one: the rate is kept either way.
        per_request = max(1, min(10, int(self._rate / 10)))
        interval_s = per_request / self._rate
        started = time.monotonic()
        position = 0
        try:
            while not self._stop.is_set() and position < len(self._bodies):
                due = started + (position / per_request) * interval_s
                wait = due - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    return
                if position % (per_request * 20) == 0 and depth(sqs, self._queue_url) > self._max_depth:
                    self.stats.waited_s += 0.1
                    self._stop.wait(0.1)  # far behind: let the consumer catch up rather than deepen the queue
                    started += 0.1
                    continue
                send_batch(sqs, self._queue_url, self._bodies[position:position + per_request], self.stats)
                position += per_request
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc
