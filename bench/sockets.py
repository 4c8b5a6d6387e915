"""WebSocket clients of the benchmarks: one listening socket, or a swarm of them on one event loop.

Both note when each frame arrived (`time.perf_counter()`), keyed by what the benchmark waits
for, so latencies are measured at the moment the client had the frame.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as connect_sync

# A frame -> the key it is waited for by (None: not interesting).
FrameKey = Callable[[dict[str, Any]], str | None]


def alert_key(frame: dict[str, Any]) -> str | None:
    """`alert:<id>` for an alert frame."""
    if frame.get("type") == "alert" and isinstance(frame.get("alert"), dict):
        return f"alert:{frame['alert'].get('id')}"
    return None


def probe_key(frame: dict[str, Any]) -> str | None:
    """`probe:<n>` for a frame the benchmark posted itself."""
    if frame.get("type") == "bench.probe":
        return f"probe:{frame.get('n')}"
    return None


def any_key(frame: dict[str, Any]) -> str | None:
    return alert_key(frame) or probe_key(frame)


class Listener:
    """One socket read by a thread; `wait(key)` returns when a frame with that key arrived."""

    def __init__(self, url: str, key: FrameKey = any_key) -> None:
        self._socket = connect_sync(url, open_timeout=30, max_size=2**20)
        self._key = key
        self.arrivals: dict[str, float] = {}
        self.frames = 0
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, name="ws-listener", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self._socket:
                at = time.perf_counter()
                try:
                    frame = json.loads(message)
                except ValueError:
                    continue
                key = self._key(frame) if isinstance(frame, dict) else None
                with self._changed:
                    self.frames += 1
                    if key is not None and key not in self.arrivals:
                        self.arrivals[key] = at
                        self._changed.notify_all()
        except ConnectionClosed:
            pass

    def wait(self, key: str, timeout_s: float) -> float | None:
        """When the frame with `key` arrived (perf_counter), or None after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while key not in self.arrivals:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return self.arrivals[key]

    def close(self) -> None:
        self._socket.close()
        self._thread.join(5)


class Swarm:
    """`count` sockets on one event loop in a thread; counts, per key, the sockets that got the frame."""

    def __init__(self, url: str, count: int, key: FrameKey = any_key, connect_parallel: int = 16) -> None:
        self._url = url
        self._count = count
        self._key = key
        self._parallel = connect_parallel
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ws-swarm", daemon=True)
        self._sockets: list[ClientConnection] = []
        self._readers: list[asyncio.Task[None]] = []
        self._changed = threading.Condition()
        # key -> arrival time at each socket that has it
        self.arrivals: dict[str, list[float]] = {}

    def open(self, timeout_s: float = 300.0) -> float:
        """Connect every socket; returns how long that took."""
        self._thread.start()
        started = time.perf_counter()
        asyncio.run_coroutine_threadsafe(self._open_all(), self._loop).result(timeout_s)
        return time.perf_counter() - started

    async def _open_all(self) -> None:
        gate = asyncio.Semaphore(self._parallel)

        async def one() -> ClientConnection:
            async with gate:
                return await connect(self._url, open_timeout=60, max_size=2**20, ping_interval=None)

        opened = await asyncio.gather(*(one() for _ in range(self._count)), return_exceptions=True)
        self._sockets = [s for s in opened if isinstance(s, ClientConnection)]
        self._readers = [asyncio.create_task(self._read(s)) for s in self._sockets]
        failures = [s for s in opened if not isinstance(s, ClientConnection)]
        if failures:
            raise ConnectionError(f"{len(failures)} of {self._count} sockets did not open: {failures[0]!r}")

    async def _read(self, socket: ClientConnection) -> None:
        try:
            async for message in socket:
                at = time.perf_counter()
                try:
                    frame = json.loads(message)
                except ValueError:
                    continue
                key = self._key(frame) if isinstance(frame, dict) else None
                if key is None:
                    continue
                with self._changed:
                    self.arrivals.setdefault(key, []).append(at)
                    self._changed.notify_all()
        except ConnectionClosed:
            pass

    def wait_all(self, key: str, timeout_s: float) -> list[float]:
        """Arrival times of the frame with `key`, once every socket has it (or at the timeout)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.arrivals.get(key, [])) < self._count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return list(self.arrivals.get(key, []))

    def close(self) -> None:
        async def close_all() -> None:
            await asyncio.gather(*(s.close() for s in self._sockets), return_exceptions=True)
            for reader in self._readers:
                reader.cancel()
            await asyncio.gather(*self._readers, return_exceptions=True)

        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(60)
            except Exception:  # noqa: BLE001, S110 - closing is best effort; the runtime stops next
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()
