"""A local stand-in for the Gemini REST API, for tests: answers, stalls or fails on request.

It serves `POST /v1beta/models/{model}:generateContent` the way the `google-genai` SDK calls
it, on 127.0.0.1 at a free port, in a thread of the test process, and records every
request (path, headers, JSON body) so that tests can check what the model was sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

Mode = Literal["answer", "slow", "error"]
_GENERATE = re.compile(r"^/(?:v1beta|v1)/models/(?P<model>[^/:]+):generateContent$")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def model(self) -> str | None:
        found = _GENERATE.match(self.path.split("?", 1)[0])
        return found.group("model") if found else None

    @property
    def text(self) -> str:
        """Every text part of the contents, joined (the question and its context)."""
        return "\n".join(part.get("text", "") for content in self.body.get("contents", [])
                         for part in content.get("parts", []))

    @property
    def system_instruction(self) -> str:
        instruction = self.body.get("systemInstruction") or self.body.get("system_instruction") or {}
        return "\n".join(part.get("text", "") for part in instruction.get("parts", []))


@dataclass
class FakeGemini:
    """The fake server; `mode`, `answer` and `delay_s` may be changed while it runs."""

    mode: Mode = "answer"
    answer: str = "Your meter used the most energy in the evening."
    delay_s: float = 10.0
    requests: list[RecordedRequest] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not started"
        return f"http://127.0.0.1:{self._server.server_port}/"

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                recorded = RecordedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                fake.requests.append(recorded)
                if recorded.model is None:
                    self._reply(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
                elif fake.mode == "error":
                    self._reply(500, {"error": {"code": 500, "message": "internal error", "status": "INTERNAL"}})
                else:
                    if fake.mode == "slow":
                        # Longer than the caller's timeout; ends early when the fake stops.
                        fake._stopping.wait(fake.delay_s)
                    self._reply(200, {
                        "candidates": [{"content": {"role": "model", "parts": [{"text": fake.answer}]},
                                        "finishReason": "STOP", "index": 0}],
                        "modelVersion": recorded.model,
                    })

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up waiting (the slow mode)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-gemini", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def reset(self, mode: Mode = "answer") -> None:
        self.mode = mode
        self.requests.clear()

    def wait_for_requests(self, count: int = 1, timeout_s: float = 30.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"the fake got {len(self.requests)} request(s), expected {count}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
