"""The AWS-compatible endpoint: an embedded ministack, or one named by AWS_ENDPOINT_URL.

The embedded one is ministack (a LocalStack-compatible emulator whose per-call cost does not
grow with queue depth or table size) run by `endpoint_server.py` with its own interpreter,
since its pins differ from the app's. It listens on loopback only, keeps its state in the
data folder, and serves only requests signed with the stage's random access key
(`aws-credentials` in the data folder, a standard AWS credentials file).
"""

from __future__ import annotations

import configparser
import json
import os
import secrets
import signal
import string
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from infra.local.lambdas import die_with_parent

PROJECT_DIR = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = Path(__file__).resolve().with_name("endpoint_server.py")
# `make setup` installs the emulator's pinned requirements into this interpreter's own venv.
DEFAULT_PYTHON = PROJECT_DIR / ".venv" / "endpoint" / "bin" / "python"
CREDENTIALS_FILE = "aws-credentials"


class EndpointError(Exception):
    """The embedded endpoint did not start."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


def load_credentials(path: Path) -> Credentials | None:
    """The `[default]` keys of an AWS credentials file, if it has them."""
    parser = configparser.ConfigParser()
    if not parser.read(path):
        return None
    section = parser["default"] if parser.has_section("default") else None
    if section is None or "aws_access_key_id" not in section or "aws_secret_access_key" not in section:
        return None
    return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])


def stage_credentials(data_dir: Path) -> Credentials:
    """The data folder's keys, made at random (and kept, readable by the owner only) the first time."""
    path = data_dir / CREDENTIALS_FILE
    found = load_credentials(path)
    if found is not None:
        return found
    alphabet = string.ascii_uppercase + string.digits
    made = Credentials("LKIA" + "".join(secrets.choice(alphabet) for _ in range(16)), secrets.token_urlsafe(30))
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"[default]\naws_access_key_id = {made.access_key_id}\n"
                  f"aws_secret_access_key = {made.secret_access_key}\n")
    return made


class EmbeddedEndpoint:
    """A ministack process on host:port, its state in `state_dir` (None: kept in memory only).

    `environment` is the process's environment besides the endpoint's own settings (default: this
    process's); the deploy rehearsal gives a clean one with IAM enforced.
    """

    def __init__(self, host: str, port: int, log_path: Path, credentials: Credentials,
                 state_dir: Path | None, save_interval_s: float = 30.0,
                 python: Path | None = None, environment: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.log_path = log_path
        self.credentials = credentials
        self.state_dir = state_dir
        self.save_interval_s = save_interval_s
        self.python = python or Path(os.environ.get("EMS_ENDPOINT_PYTHON") or DEFAULT_PYTHON)
        self.environment = environment
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> None:
        if not self.python.exists():
            raise EndpointError(f"the endpoint's interpreter {self.python} is missing: run `make setup`")
        env = {
            **(os.environ if self.environment is None else self.environment),
            "EMS_ENDPOINT_HOST": self.host,
            "EMS_ENDPOINT_PORT": str(self.port),
            "EMS_ENDPOINT_ACCESS_KEY": self.credentials.access_key_id,
            "EMS_ENDPOINT_STATE_DIR": str(self.state_dir) if self.state_dir else "",
            "EMS_ENDPOINT_SAVE_INTERVAL_S": str(self.save_interval_s),
        }
        if self.state_dir:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Its log goes to a file: a pipe nobody reads would fill up and block it.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as log_file:
            self._process = subprocess.Popen(
                [str(self.python), str(SERVER_SCRIPT)],
                stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=self.log_path.parent,
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only async-signal-safe work
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EndpointError(f"the AWS endpoint exited at start:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/_localstack/health", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise EndpointError(f"the AWS endpoint did not answer on {self.url} in {timeout_s:.0f} s:\n{self.log_tail()}")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self, timeout_s: float = 60.0) -> None:
        """A clean stop: the emulator saves its state first. Its Lambda workers are in its process group."""
        if self._process is None or self._process.poll() is not None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no endpoint log)"


def aws_client(service: str, endpoint_url: str | None, region: str) -> Any:
    """A client of the runtime itself (not of the app)."""
    return boto3.session.Session(region_name=region).client(
        service,
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )


LEGACY_SNAPSHOT = "snapshot.json"


def import_legacy_snapshot(data_dir: Path, endpoint_url: str, region: str, tables: list[str], queues: list[str],
                           log: Any) -> dict[str, int] | None:
    """Load, once, the tables and queued messages an earlier version saved as `snapshot.json`.

    The file is renamed `snapshot.json.imported` afterwards, so nothing is loaded twice.
    """
    path = data_dir / LEGACY_SNAPSHOT
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        log(f"{path} is unreadable ({exc}); left as it is")
        return None
    dynamodb, sqs = aws_client("dynamodb", endpoint_url, region), aws_client("sqs", endpoint_url, region)
    items = messages = 0
    for table, rows in (data.get("tables") or {}).items():
        if table not in tables:
            log(f"{path}: table {table} is no longer declared; its items are skipped")
            continue
        for start in range(0, len(rows), 25):
            pending: dict[str, Any] = {table: [{"PutRequest": {"Item": row}} for row in rows[start:start + 25]]}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        items += len(rows)
    for queue, saved in (data.get("queues") or {}).items():
        if queue not in queues:
            log(f"{path}: queue {queue} is no longer declared; its messages are skipped")
            continue
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        for start in range(0, len(saved), 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": m["body"], **({"MessageAttributes": m["attributes"]} if m.get("attributes") else {})}
                for i, m in enumerate(saved[start:start + 10])])
        messages += len(saved)
    os.replace(path, path.with_name(LEGACY_SNAPSHOT + ".imported"))
    return {"items": items, "messages": messages}
