"""API Gateway's REST side: `/api/...` becomes a proxy event for the app; `/` is the frontend.

Routes are matched with Chalice's own matcher; an unknown route gets the body the template's
MISSING_AUTHENTICATION_TOKEN GatewayResponse gives when deployed (404 `not_found`), a body
over API Gateway's 10 MB limit gets 413, and a function failure gets 502, as API Gateway does.
"""

from __future__ import annotations

import base64
import json
import logging
import mimetypes
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from chalice import Chalice
from chalice.local import RouteMatcher

from infra.local.lambdas import REST_HANDLER, FunctionPool, InvocationError

log = logging.getLogger("ems.local.rest")

API_PREFIX = "/api"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class TokenBucket:
    """API Gateway's stage throttling: `rate` requests a second, up to `burst` at once (rate 0: off)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(burst, 1)
        self._tokens = float(self.burst)
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


class RestGateway:
    """A threaded HTTP server in front of the app's REST function."""

    def __init__(
        self,
        app: Chalice,
        pool: FunctionPool,
        host: str,
        port: int,
        stage: str,
        frontend_dir: Path | None,
        extra_files: dict[str, bytes] | None = None,
        throttle: TokenBucket | None = None,
    ) -> None:
        self.app = app
        self.throttle = throttle or TokenBucket(0, 1)
        self.pool = pool
        self.stage = stage
        self.frontend_dir = frontend_dir
        self.extra_files = extra_files or {}
        self.matcher = RouteMatcher(list(app.routes))
        gateway = self

        class Handler(_Handler):
            pass

        Handler.gateway = gateway
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="rest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def build_event(
        self, method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> dict[str, Any] | None:
        """The proxy event for a request under /api, or None when no route matches."""
        split = urlsplit(target)
        path = split.path[len(API_PREFIX) :] or "/"
        try:
            match = self.matcher.match_route(path)
        except ValueError:
            return None
        query = parse_qs(split.query, keep_blank_values=True)
        binary = headers.get("content-type", "") in self.app.api.binary_types
        now = time.time()
        request_id = str(uuid.uuid4())
        return {
            "resource": match.route,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            # API Gateway hands path parameters to the function URL-decoded.
            "pathParameters": {k: unquote(v) for k, v in match.captured.items()} or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": match.route,
                "httpMethod": method,
                "path": f"{API_PREFIX}{path}",
                "stage": self.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTimeEpoch": int(now * 1000),
                "protocol": "HTTP/1.1",
                "domainName": headers.get("host", "localhost"),
                "apiId": "local",
                "accountId": "000000000000",
                "identity": {"sourceIp": source_ip, "userAgent": headers.get("user-agent", "")},
            },
            "body": (base64.b64encode(body).decode() if binary else body.decode("utf-8", "replace"))
            if body
            else None,
            "isBase64Encoded": bool(body) and binary,
        }

    def preflight_headers(self, route: str) -> dict[str, str]:
        """What API Gateway's generated OPTIONS method answers for a route."""
        entries = self.app.routes[route]
        cors_entries = [m for m, e in entries.items() if e.cors is not None]
        if not cors_entries:
            return {"Access-Control-Allow-Methods": "OPTIONS"}
        headers = dict(entries[cors_entries[0]].cors.get_access_control_headers())
        headers["Access-Control-Allow-Methods"] = ",".join([*cors_entries, "OPTIONS"])
        return headers


class _Handler(BaseHTTPRequestHandler):
    gateway: RestGateway
    protocol_version = "HTTP/1.1"
    server_version = "ems-local"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in one send (see _finish), and nothing waits for Nagle's
        # algorithm: without this a kept-alive client stalls ~40 ms on its delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, CONNECT, made-up ones) is a route that does not exist, answered in
        # the contract's body as API Gateway's stage answers it, not with http.server's 501 page.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (a malformed request line, an over-long header...) in the
        # contract's error body too.
        self.close_connection = True
        codes = {400: "bad_request", 414: "uri_too_long", 431: "headers_too_large"}
        self._send(code, {"Connection": "close"}, error_body(codes.get(code, "bad_request"), message or "Bad request."))

    def _handle(self) -> None:
        try:
            path = urlsplit(self.path).path
            if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                self._api()
            elif self.command in ("GET", "HEAD"):
                self._static(path)
            else:
                self._send(404, {}, error_body("not_found", "No such route."))
        except (ConnectionError, TimeoutError) as exc:
            log.info("client went away: %s", exc)
        except Exception:
            log.exception("unexpected REST gateway error")
            self._send(500, {}, error_body("internal_error", "The local gateway failed."))

    def _read_body(self) -> bytes | None:
        length_text = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send(411, {}, error_body("length_required", "Send a Content-Length."))
            return None
        try:
            length = int(length_text or 0)
        except ValueError:
            length = -1
        if length < 0:  # a negative length would read to the end of the stream, past every limit
            self.close_connection = True
            self._send(400, {}, error_body("bad_request", "Invalid Content-Length."))
            return None
        if length > MAX_PAYLOAD_BYTES:
            self.close_connection = True
            self._send(413, {}, error_body("payload_too_large", "The request body is too large."))
            return None
        return self.rfile.read(length) if length else b""

    def _api(self) -> None:
        body = self._read_body()
        if body is None:
            return
        gateway = self.gateway
        if not gateway.throttle.take():  # as the stage's THROTTLED gateway response answers
            self._send(429, {"Retry-After": "1"}, error_body("too_many_requests", "Too Many Requests"))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = gateway.build_event(self.command, self.path, headers, body, self.client_address[0])
        if event is None:
            self._send(404, {}, error_body("not_found", "No such route."))
            return
        route = event["requestContext"]["resourcePath"]
        if self.command == "OPTIONS" and "OPTIONS" not in gateway.app.routes[route]:
            self._send(200, gateway.preflight_headers(route), b"")
            return
        try:
            result = gateway.pool.invoke(REST_HANDLER, event)
        except InvocationError as exc:
            log.warning("REST function failed: %s", exc)
            self._send(502, {}, error_body("bad_gateway", "Internal server error"))
            return
        self._send_lambda_result(result)

    def _send_lambda_result(self, result: Any) -> None:
        if not isinstance(result, dict) or "statusCode" not in result:
            self._send(502, {}, error_body("bad_gateway", "Malformed Lambda proxy response"))
            return
        raw = result.get("body") or ""
        data = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        headers = dict(result.get("headers") or {})
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"  # API Gateway's default for proxy responses
        multi = result.get("multiValueHeaders") or {}
        self.send_response(int(result["statusCode"]))
        for name, values in multi.items():
            for value in values:
                self.send_header(name, str(value))
        self._finish(headers, data)

    def _static(self, path: str) -> None:
        gateway = self.gateway
        if path.lstrip("/") in gateway.extra_files:
            self._send(200, {"Content-Type": "application/json", "Cache-Control": "no-store"},
                       gateway.extra_files[path.lstrip("/")])
            return
        root = gateway.frontend_dir
        if root is None or not (root / "index.html").is_file():
            page = (
                b"<!doctype html><title>EMS</title><p>The frontend is not built. "
                b"The API is at <a href='/api/health'>/api/health</a>.</p>"
            )
            self._send(200, {"Content-Type": "text/html; charset=utf-8"}, page)
            return
        candidate = (root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
            candidate = root / "index.html"  # client-side routes fall back to the app shell
        content_type = mimetypes.guess_type(candidate.name)[0] or "application/octet-stream"
        cache = "no-cache" if candidate.name == "index.html" else "public, max-age=3600"
        self._send(200, {"Content-Type": content_type, "Cache-Control": cache}, candidate.read_bytes())

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        if body and "Content-Type" not in headers:
            headers = {**headers, "Content-Type": "application/json"}
        self._finish(headers, body)

    def _finish(self, headers: dict[str, str], body: bytes) -> None:
        for name, value in headers.items():
            if name.lower() != "content-length":
                self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(body)))
        # end_headers, with the body in the same write (http.server's own header buffer)
        buffer: list[bytes] = self._headers_buffer  # type: ignore[attr-defined]
        buffer.append(b"\r\n")
        if self.command != "HEAD":
            buffer.append(body)
        self.flush_headers()
