"""Real WebSocket clients for tests: a socket that keeps every frame, devices and readings for them."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from chalicelib.monitoring.readings import hour_key as reading_hour_key
from tests.accounts import Account, api
from tests.harness import RuntimeProcess, wait_for

DEADLINE_S = 30.0
Frame = dict[str, Any]


class Socket:
    """A real WebSocket client that keeps every frame it received, in order."""

    def __init__(self, ws: ClientConnection, name: str = "socket") -> None:
        self.name = name
        self.frames: list[Frame] = []
        self.closed = False
        self._ws = ws

    def send(self, frame: Frame | str) -> None:
        self._ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def _read(self, timeout_s: float) -> Frame | None:
        """One more frame, or None when none came in time (or the socket is closed)."""
        if self.closed:
            return None
        try:
            raw = self._ws.recv(timeout=timeout_s)
        except TimeoutError:
            return None
        except ConnectionClosed:
            self.closed = True
            return None
        frame = json.loads(raw)
        self.frames.append(frame)
        return frame

    def expect(self, match: Callable[[Frame], bool], what: str = "a frame", timeout_s: float = DEADLINE_S,
               count: int = 1) -> list[Frame]:
        """Wait until `count` received frames match; returns the matches."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [f for f in self.frames if match(f)]
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise AssertionError(f"{self.name}: no {what} within {timeout_s} s; got {self.frames!r}")
            self._read(min(left, 1.0))

    def settle(self, quiet_s: float = 0.5) -> None:
        """A round trip through the gateway, then read whatever else arrives in a quiet moment."""
        pongs = len(self.matching(lambda f: f.get("type") == "pong"))
        self.send({"action": "ping"})
        self.expect(lambda f: f.get("type") == "pong", "pong", count=pongs + 1)
        deadline = time.monotonic() + quiet_s
        while (left := deadline - time.monotonic()) > 0 and not self.closed:
            self._read(left)

    def matching(self, match: Callable[[Frame], bool]) -> list[Frame]:
        return [f for f in self.frames if match(f)]

    def request(self, frame: Frame | str, match: Callable[[Frame], bool], what: str = "an answer") -> Frame:
        """Send a frame and wait for the first new frame that matches."""
        before = len(self.matching(match))
        self.send(frame)
        return self.expect(match, what, count=before + 1)[-1]

    @property
    def closed_by_server(self) -> bool:
        """Closed with a close frame from the server (not by this client)."""
        return self.closed and self._ws.protocol.close_rcvd is not None

    def wait_closed(self, timeout_s: float = DEADLINE_S) -> None:
        """Read until the server closes the socket."""
        deadline = time.monotonic() + timeout_s
        while not self.closed and time.monotonic() < deadline:
            self._read(min(1.0, max(deadline - time.monotonic(), 0.01)))
        assert self.closed_by_server, f"{self.name} was not closed by the server within {timeout_s} s"


def connect_to(runtime: RuntimeProcess, query: str) -> ClientConnection:
    """An unopened client connection to the gateway: `with connect_to(...) as ws:` opens it."""
    return connect(f"{runtime.ws_url}/{query}", open_timeout=DEADLINE_S, proxy=None, compression=None)


@contextmanager
def sockets(runtime: RuntimeProcess, *accounts: Account) -> Iterator[list[Socket]]:
    """One open socket per account (an account may appear more than once); all closed after."""
    with ExitStack() as stack:
        yield [Socket(stack.enter_context(connect_to(runtime, f"?token={account.token}")), f"{account.username}#{i}")
               for i, account in enumerate(accounts)]


def make_device(runtime: RuntimeProcess, admin: Account, owners: list[Account], limit: float = 1000.0) -> str:
    """A device created over HTTP, once monitoring's replica knows it (with its owners)."""
    device_id = f"m-{uuid.uuid4().hex[:10]}"
    body = {"id": device_id, "name": f"Meter {device_id}", "max_hourly_kwh": limit, "timezone": "UTC",
            "owner_ids": [o.id for o in owners]}
    response = api(runtime, "POST", "/devices", admin, json=body)
    assert response.status_code == 201, response.text
    meters = runtime.client("dynamodb")
    wait_for(lambda: meters.get_item(TableName=runtime.name("meters"), Key={"device_id": {"S": device_id}},
                                     ConsistentRead=True).get("Item"),
             timeout_s=DEADLINE_S, what="the device in monitoring's replica")
    return device_id


def send_readings(runtime: RuntimeProcess, readings: list[dict[str, Any]]) -> None:
    sqs = runtime.client("sqs")
    url = runtime.queue_url("readings")
    for start in range(0, len(readings), 10):
        entries = [{"Id": str(i), "MessageBody": json.dumps(r)} for i, r in enumerate(readings[start:start + 10])]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def expected_hours(readings: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Each UTC hour's exact total of these readings."""
    totals: dict[str, Decimal] = {}
    for r in readings:
        key = reading_hour_key(dt.datetime.fromisoformat(r["timestamp"]))
        totals[key] = totals.get(key, Decimal(0)) + Decimal(str(r["measurement_value"]))
    return totals


def stored_hours(runtime: RuntimeProcess, device_id: str) -> dict[str, Decimal]:
    """The device's hourly totals as the table holds them."""
    items = runtime.client("dynamodb").query(
        TableName=runtime.name("hourly-totals"), KeyConditionExpression="device_id = :d", ConsistentRead=True,
        ExpressionAttributeValues={":d": {"S": device_id}})["Items"]
    return {i["hour_start"]["S"]: Decimal(i["total_kwh"]["N"]) for i in items}


def hour_readings(device_id: str, hour: dt.datetime, kwh_each: float, count: int = 6) -> list[dict[str, Any]]:
    return [{"timestamp": (hour + dt.timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "device_id": device_id, "measurement_value": kwh_each} for i in range(count)]


def hour_key(hour: dt.datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_alert(alert_id: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") == "alert" and f.get("alert", {}).get("id") == alert_id


def mentions(device_id: str) -> Callable[[Frame], bool]:
    return lambda f: device_id in json.dumps(f)


def alerts_of(runtime: RuntimeProcess, account: Account, query: str = "") -> list[dict[str, Any]]:
    response = api(runtime, "GET", f"/alerts{query}", account)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def queue_drained(runtime: RuntimeProcess, logical: str) -> bool:
    attributes = runtime.client("sqs").get_queue_attributes(
        QueueUrl=runtime.queue_url(logical),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def refused_status(runtime: RuntimeProcess, query: str) -> int | None:
    """The HTTP status of a refused handshake, or None if it was accepted."""
    try:
        with connect_to(runtime, query):
            return None
    except InvalidStatus as exc:
        return exc.response.status_code
