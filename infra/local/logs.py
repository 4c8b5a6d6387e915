"""Collects the JSON log lines of every function worker and shows them readably.

Each worker's stdout and stderr are connected to a Unix socket of the runtime, so the app
writes the same JSON lines it writes to CloudWatch; the collector renders each line as
`time level [function] message key=value ...`, or passes it through with `--log-format json`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

# Keys every Powertools line carries that the readable form shows in its own place.
_SHOWN_APART = {
    "level",
    "message",
    "timestamp",
    "service",
    "location",
    "sampling_rate",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "exception",
    "exception_name",
    "stack_trace",
}
_COLOURS = {"DEBUG": "\033[2m", "INFO": "", "WARNING": "\033[33m", "ERROR": "\033[31m"}
_RESET = "\033[0m"


class LogRenderer:
    """Turns one JSON log line into one readable line (or leaves other text as it is)."""

    def __init__(self, out: TextIO, *, json_output: bool, colour: bool) -> None:
        self._out = out
        self._json = json_output
        self._colour = colour
        self._lock = threading.Lock()

    def emit(self, source: str, line: str) -> None:
        """Write one line that came from `source` (a function name or `runtime`)."""
        line = line.rstrip("\n")
        if not line:
            return
        text = line if self._json else self._render(source, line)
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()

    def _render(self, source: str, line: str) -> str:
        try:
            record = json.loads(line)
        except ValueError:
            return f"{'':12} {'':7} [{source}] {line}"
        if not isinstance(record, dict):
            return f"{'':12} {'':7} [{source}] {line}"
        level = str(record.get("level", "INFO"))
        stamp = str(record.get("timestamp", ""))
        clock = stamp[11:23] if len(stamp) >= 23 else stamp
        extras = " ".join(
            f"{key}={_short(value)}"
            for key, value in record.items()
            if key not in _SHOWN_APART and value not in (None, "")
        )
        text = f"{clock:12} {level:7} [{source}] {record.get('message', '')}"
        if extras:
            text += f"  {extras}"
        if record.get("exception"):
            text += "\n" + "\n".join("    " + part for part in str(record["exception"]).splitlines())
        if self._colour and _COLOURS.get(level):
            text = f"{_COLOURS[level]}{text}{_RESET}"
        return text


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


class LogCollector:
    """A Unix socket server; each connection is one worker, its first line names it."""

    def __init__(self, path: Path, renderer: LogRenderer) -> None:
        self.path = path
        self._renderer = renderer
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.path.exists():
            self.path.unlink()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(64)
        thread = threading.Thread(target=self._accept_loop, name="log-collector", daemon=True)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._server is not None
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._read, args=(conn,), daemon=True)
            thread.start()

    def _read(self, conn: socket.socket) -> None:
        with conn, conn.makefile("r", encoding="utf-8", errors="replace") as lines:
            source = lines.readline().strip() or "function"
            for line in lines:
                self._renderer.emit(source, line)

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self.path.exists():
            self.path.unlink()


def connect_worker_output(path: str, source: str) -> None:
    """In a worker: send this process's stdout and stderr to the collector at `path`."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.sendall(f"{source}\n".encode())
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(sock.fileno(), 1)
    os.dup2(sock.fileno(), 2)
    sock.close()


class RuntimeLogHandler(logging.Handler):
    """Routes the runtime's own log records through the same renderer."""

    def __init__(self, renderer: LogRenderer) -> None:
        super().__init__()
        self._renderer = renderer

    def emit(self, record: logging.LogRecord) -> None:
        payload: dict[str, Any] = {
            "level": record.levelname,
            "message": record.getMessage(),
            "timestamp": _iso(record.created),
        }
        payload.update(getattr(record, "fields", {}))
        if record.exc_info:
            payload["exception"] = logging.Formatter().formatException(record.exc_info)
        self._renderer.emit(record.name.removeprefix("ems.local.") or "runtime", json.dumps(payload))


def _iso(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")
