"""An API-Gateway-compatible WebSocket API and its `@connections` management API, on one port.

Like API Gateway, it invokes the app's `$connect`, `$default` and `$disconnect` handlers
with API Gateway's event shapes, refuses a handshake whose `$connect` result has a status
of 400 or more, answers a handler failure with API Gateway's error frame, closes idle
connections after the idle timeout and every connection after the maximum duration, and
limits messages to 128 KB. The management API (`POST|GET|DELETE /{stage}/@connections/{id}`)
answers 410 GoneException for a connection that is not open. The WebSocket protocol itself
is websockets' Sans-I/O layer, driven here so that plain HTTP and WebSocket share the port.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from infra.local.lambdas import InvocationError

log = logging.getLogger("ems.local.websocket")

MAX_MESSAGE_BYTES = 128 * 1024
_MAX_HEAD_BYTES = 16 * 1024
Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class GatewayConfig:
    """Where the gateway listens and how it names itself in events."""

    host: str
    port: int
    stage: str = "api"
    api_id: str = "local"
    idle_timeout_s: float = 600.0
    max_duration_s: float = 7200.0
    handlers: dict[str, str] = field(default_factory=dict)  # route key -> handler name


@dataclass
class Connection:
    """One open WebSocket, as API Gateway tracks it."""

    id: str
    protocol: ServerProtocol
    writer: asyncio.StreamWriter
    source_ip: str
    user_agent: str
    connected_at: float = field(default_factory=time.time)
    last_active_at: float = field(default_factory=time.time)
    open: bool = False
    inbox: asyncio.Queue[tuple[str, bool]] = field(default_factory=asyncio.Queue)


def new_connection_id() -> str:
    """An id shaped like API Gateway's (base64, so it needs URL-encoding in paths)."""
    return base64.b64encode(os.urandom(10)).decode()


def _http_date(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


class WebSocketGateway:
    """Serves WebSocket clients and the management API; invokes handlers through `invoke`."""

    def __init__(self, config: GatewayConfig, invoke: Invoke) -> None:
        self.config = config
        self._invoke = invoke
        self.connections: dict[str, Connection] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.config.host, self.config.port, limit=_MAX_HEAD_BYTES
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections.values()):
            await self._close(connection, 1001, "Going away")
        if self._tasks:
            # Clients get a moment to finish the closing handshake; idle keep-alive
            # management connections are then cancelled.
            await asyncio.wait(self._tasks, timeout=2)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- one TCP connection: WebSocket or management HTTP -------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            method, target, headers = _parse_head(head)
            if headers.get("upgrade", "").lower() == "websocket":
                await self._serve_websocket(head, headers, reader, writer)
            else:
                await self._serve_management(method, target, headers, reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            await _write_http(writer, 400, {"message": "Bad Request"})
        except (ConnectionError, OSError) as exc:
            log.info("client connection dropped: %s", exc)
        except Exception:
            log.exception("unexpected gateway error")
        finally:
            writer.close()
            self._tasks.discard(task)

    # --- WebSocket ----------------------------------------------------------------------

    async def _serve_websocket(
        self,
        head: bytes,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        protocol = ServerProtocol(max_size=MAX_MESSAGE_BYTES)
        protocol.receive_data(head)
        events = protocol.events_received()
        if not events:  # the handshake request did not parse
            await _flush(protocol, writer)
            return
        request = events[0]
        if not isinstance(request, Request):
            return
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        connection = Connection(
            id=new_connection_id(),
            protocol=protocol,
            writer=writer,
            source_ip=str(peer[0]),
            user_agent=headers.get("user-agent", ""),
        )
        status = await self._connect(connection, request.path, request.headers.raw_items())
        if status >= 400:
            protocol.send_response(protocol.reject(status, _reason(status)))
            await _flush(protocol, writer)
            return
        response = protocol.accept(request)
        protocol.send_response(response)
        await _flush(protocol, writer)
        if response.status_code != 101:
            return
        connection.open = True
        self.connections[connection.id] = connection
        dispatcher = asyncio.create_task(self._dispatch(connection))
        try:
            await self._read_frames(connection, reader)
        finally:
            connection.open = False
            self.connections.pop(connection.id, None)
            dispatcher.cancel()
            await self._disconnect(connection)

    async def _read_frames(self, connection: Connection, reader: asyncio.StreamReader) -> None:
        protocol = connection.protocol
        fragments: list[bytes] = []
        fragment_is_text = True
        while protocol.state is not State.CLOSED:
            now = time.time()
            idle_left = connection.last_active_at + self.config.idle_timeout_s - now
            life_left = connection.connected_at + self.config.max_duration_s - now
            try:
                data = await asyncio.wait_for(reader.read(65536), timeout=max(min(idle_left, life_left), 0.01))
            except TimeoutError:
                if protocol.state is State.OPEN:
                    log.info("closing %s: %s", connection.id, "idle timeout" if idle_left <= life_left else "maximum duration")
                    protocol.send_close(1001, "Going away")
                    await _flush(protocol, connection.writer)
                    continue
                return  # the client did not finish the closing handshake
            if not data:
                protocol.receive_eof()
                await _flush(protocol, connection.writer)
                return
            connection.last_active_at = time.time()
            protocol.receive_data(data)
            for event in protocol.events_received():
                if not isinstance(event, Frame):
                    continue
                if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                    fragments = [bytes(event.data)]
                    fragment_is_text = event.opcode is Opcode.TEXT
                elif event.opcode is Opcode.CONT:
                    fragments.append(bytes(event.data))
                else:
                    continue  # ping, pong and close are answered by the protocol
                if event.fin:
                    message = b"".join(fragments)
                    fragments = []
                    if fragment_is_text:
                        connection.inbox.put_nowait((message.decode(), False))
                    else:
                        connection.inbox.put_nowait((base64.b64encode(message).decode(), True))
            if protocol.parser_exc is not None:
                log.info("closing %s: %s", connection.id, protocol.parser_exc)
            await _flush(protocol, connection.writer)

    async def _dispatch(self, connection: Connection) -> None:
        """Hand each message to `$default` in order (API Gateway does not wait; this does)."""
        while True:
            body, is_base64 = await connection.inbox.get()
            handler = self.config.handlers.get("$default")
            request_id = str(uuid.uuid4())
            if handler is None:
                await self._send_error_frame(connection, "Forbidden", request_id)
                continue
            event = {
                "requestContext": self._request_context(connection, "$default", "MESSAGE", request_id)
                | {"messageId": str(uuid.uuid4())},
                "body": body,
                "isBase64Encoded": is_base64,
            }
            try:
                await self._invoke(handler, event)
            except InvocationError as exc:
                log.warning("$default handler failed on %s: %s", connection.id, exc)
                await self._send_error_frame(connection, "Internal server error", request_id)

    async def _send_error_frame(self, connection: Connection, message: str, request_id: str) -> None:
        frame = {"message": message, "connectionId": connection.id, "requestId": request_id}
        await self.post(connection.id, json.dumps(frame).encode())

    async def _connect(self, connection: Connection, path: str, raw_headers: Any) -> int:
        handler = self.config.handlers.get("$connect")
        if handler is None:
            return 200
        multi_headers: dict[str, list[str]] = {}
        for name, value in raw_headers:
            multi_headers.setdefault(name, []).append(value)
        query = parse_qs(urlsplit(path).query, keep_blank_values=True)
        request_id = str(uuid.uuid4())
        event = {
            "headers": {k: v[-1] for k, v in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "requestContext": self._request_context(connection, "$connect", "CONNECT", request_id),
            "isBase64Encoded": False,
        }
        try:
            result = await self._invoke(handler, event)
        except InvocationError as exc:
            log.warning("$connect handler failed: %s", exc)
            return 500
        status = result.get("statusCode", 200) if isinstance(result, dict) else 200
        try:
            return int(status)
        except (TypeError, ValueError):
            log.warning("$connect handler returned a non-numeric status %r", status)
            return 502

    async def _disconnect(self, connection: Connection) -> None:
        handler = self.config.handlers.get("$disconnect")
        if handler is None:
            return
        request_id = str(uuid.uuid4())
        event = {
            "headers": {},
            "multiValueHeaders": {},
            "requestContext": self._request_context(connection, "$disconnect", "DISCONNECT", request_id)
            | {
                "disconnectStatusCode": connection.protocol.close_code or 1006,
                "disconnectReason": connection.protocol.close_reason or "",
            },
            "isBase64Encoded": False,
        }
        try:
            await self._invoke(handler, event)
        except InvocationError as exc:
            log.warning("$disconnect handler failed on %s: %s", connection.id, exc)

    def _request_context(
        self, connection: Connection, route_key: str, event_type: str, request_id: str
    ) -> dict[str, Any]:
        now = time.time()
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": _http_date(now),
            "messageDirection": "IN",
            "stage": self.config.stage,
            "connectedAt": int(connection.connected_at * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
            "requestId": request_id,
            "domainName": f"{self.config.host}:{self.config.port}",
            "connectionId": connection.id,
            "apiId": self.config.api_id,
        }

    async def post(self, connection_id: str, data: bytes) -> bool:
        """Send one message to a connection; False when it is not open (GoneException)."""
        connection = self.connections.get(connection_id)
        if connection is None or not connection.open or connection.protocol.state is not State.OPEN:
            return False
        try:
            connection.protocol.send_text(data)
        except UnicodeDecodeError:
            connection.protocol.send_binary(data)
        await _flush(connection.protocol, connection.writer)
        return True

    async def _close(self, connection: Connection, code: int, reason: str) -> None:
        if connection.protocol.state is State.OPEN:
            connection.protocol.send_close(code, reason)
            await _flush(connection.protocol, connection.writer)

    # --- management API -----------------------------------------------------------------

    async def _serve_management(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        while True:
            length = int(headers.get("content-length", "0") or 0)
            if length > MAX_MESSAGE_BYTES + 1024 * 1024:
                await _write_http(writer, 413, {"message": "Request Entity Too Large"})
                return
            body = await reader.readexactly(length) if length else b""
            status, payload, extra = await self._management(method, target, body)
            await _write_http(writer, status, payload, extra)
            if headers.get("connection", "").lower() == "close":
                return
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
            except (asyncio.IncompleteReadError, TimeoutError):
                return
            method, target, headers = _parse_head(head)

    async def _management(
        self, method: str, target: str, body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        path = urlsplit(target).path
        prefix = f"/{self.config.stage}/@connections/"
        if not path.startswith(prefix) or len(path) == len(prefix):
            return 403, {"message": "Forbidden"}, {"x-amzn-ErrorType": "ForbiddenException"}
        connection_id = unquote(path[len(prefix) :])
        gone = (410, {"message": None}, {"x-amzn-ErrorType": "GoneException"})
        connection = self.connections.get(connection_id)
        if method == "POST":
            if len(body) > MAX_MESSAGE_BYTES:
                return 413, {"message": "Message too long"}, {"x-amzn-ErrorType": "PayloadTooLargeException"}
            return (200, None, {}) if await self.post(connection_id, body) else gone
        if connection is None or not connection.open:
            return gone
        if method == "GET":
            return (
                200,
                {
                    "connectedAt": _iso(connection.connected_at),
                    "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                    "lastActiveAt": _iso(connection.last_active_at),
                },
                {},
            )
        if method == "DELETE":
            await self._close(connection, 1000, "")
            return 204, None, {}
        return 405, {"message": "Method Not Allowed"}, {"x-amzn-ErrorType": "MethodNotAllowedException"}


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError(f"not an HTTP request line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return parts[0], parts[1], headers


def _reason(status: int) -> str:
    import http

    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _write_http(
    writer: asyncio.StreamWriter, status: int, payload: Any, extra: dict[str, str] | None = None
) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    lines = [
        f"HTTP/1.1 {status} {_reason(status)}",
        f"Content-Length: {len(body)}",
        "Content-Type: application/json",
        f"x-amzn-RequestId: {uuid.uuid4()}",
    ]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()


async def _flush(protocol: ServerProtocol, writer: asyncio.StreamWriter) -> None:
    for chunk in protocol.data_to_send():
        if chunk:
            writer.write(chunk)
        elif writer.can_write_eof():
            writer.write_eof()
    await writer.drain()
