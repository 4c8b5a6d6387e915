"""Starts the real local runtime (`python -m infra.local`) as a process, for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config

from infra.local.endpoint import stage_credentials

PROJECT_DIR = Path(__file__).resolve().parents[1]
# argon2id at its production size costs 64 MiB and ~0.1 s per hash; tests use a light one. Every test
# signs up from 127.0.0.1, so the per-address limits are set past what a test session does.
FAST_HASHING = {"EMS_ARGON2_MEMORY_KIB": "1024", "EMS_ARGON2_TIME_COST": "1", "EMS_ARGON2_PARALLELISM": "1",
                "EMS_REGISTER_MAX_PER_SOURCE_HOUR": "100000", "EMS_LOGIN_MAX_FAILURES_PER_SOURCE": "100000"}
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def unique_stage(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def wait_for(check: Callable[[], T | None], timeout_s: float = 20.0, interval_s: float = 0.1,
             what: str = "condition") -> T:
    """Poll `check` until it returns something truthy, up to a deadline."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")


class RuntimeProcess:
    """One `python -m infra.local` process with its own ports, stage and data folder."""

    def __init__(
        self,
        data_dir: Path,
        *,
        app_dir: Path = PROJECT_DIR,
        stage: str | None = None,
        ports: tuple[int, int, int] | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.app_dir = app_dir
        self.stage = stage or unique_stage()
        self.data_dir = data_dir
        self.rest_port, self.ws_port, self.endpoint_port = ports or (free_port(), free_port(), free_port())
        self.extra_args = extra_args or []
        self.env = env or {}
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}/api"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.endpoint_port}"

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "infra.local",
            "--app-dir", str(self.app_dir),
            "--stage", self.stage,
            "--rest-port", str(self.rest_port),
            "--ws-port", str(self.ws_port),
            "--endpoint-port", str(self.endpoint_port),
            "--data-dir", str(self.data_dir),
            *self.extra_args,
        ]

    def start(self, timeout_s: float = 90.0) -> RuntimeProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EMS_", "AWS_ENDPOINT"))}
        env.update(self.env)
        self.process = subprocess.Popen(
            self.command(), cwd=PROJECT_DIR, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(line.startswith("Ready.") for line in self.lines):
                return self
            if self.process.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"the runtime exited with {self.process.returncode}:\n{self.output}")
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the runtime was not ready in {timeout_s} s:\n{self.output}")

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C, as a person would; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"the runtime did not stop in {timeout_s} s:\n{self.output}") from None
        if self._reader:
            self._reader.join(5)
        return self.process.returncode

    def aws_env(self) -> dict[str, str]:
        """The keys of the runtime's embedded endpoint (made at random in its data folder)."""
        return stage_credentials(self.data_dir).env()

    def client(self, service: str) -> Any:
        keys = stage_credentials(self.data_dir)
        return boto3.session.Session(
            region_name="us-east-1", aws_access_key_id=keys.access_key_id, aws_secret_access_key=keys.secret_access_key
        ).client(service, endpoint_url=self.endpoint_url, config=Config(retries={"max_attempts": 2}))

    def name(self, logical: str) -> str:
        return f"ems-{self.stage}-{logical}"

    def queue_url(self, logical: str) -> str:
        return str(self.client("sqs").get_queue_url(QueueName=self.name(logical))["QueueUrl"])


def endpoint_pids(port: int) -> list[int]:
    """The embedded endpoints serving `port` (found by the setting the runtime gives them)."""
    wanted = f"EMS_ENDPOINT_PORT={port}".encode()
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if wanted in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids
