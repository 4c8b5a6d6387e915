"""Gemini answers through the `google-genai` SDK, against a local fake of its REST API.

In process: `GeminiAssistant` answers with the model's text, and every failure (a stall past the
timeout, an error status, an empty answer, no key) is `AiUnavailableError`; the request carries
the question, the user's context, the system instruction and the API key. Through the runtime:
a client's unmatched chat question gets an `ai` answer built from that client's own devices only,
and the polite fallback when the model fails.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from chalicelib.chat import ai, faq
from chalicelib.chat.ai import SYSTEM_INSTRUCTION, AiUnavailableError, GeminiAssistant
from chalicelib.chat.service import FALLBACK_ANSWER
from chalicelib.settings import get_settings
from tests.accounts import Account, api, new_admin, new_client
from tests.conftest import FAST_HASHING
from tests.fake_gemini import FakeGemini, Mode
from tests.harness import RuntimeProcess
from tests.sockets import Socket, make_device, sockets

MODEL = "gemini-test-model"
TIMEOUT_S = 1.0
QUESTION = "Which of my meters used the most energy yesterday?"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


@pytest.fixture
def gemini(fake: FakeGemini) -> FakeGemini:
    fake.reset()
    return fake


def _clear_caches() -> None:
    get_settings.cache_clear()
    ai._client.cache_clear()


@pytest.fixture
def configured(gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    """This process's settings point the SDK at the fake."""
    monkeypatch.setenv("EMS_GEMINI_API_KEY", "test-key")
    monkeypatch.setenv("EMS_GEMINI_BASE_URL", gemini.url)
    monkeypatch.setenv("EMS_GEMINI_TIMEOUT_S", str(TIMEOUT_S))
    monkeypatch.setenv("EMS_GEMINI_MODEL", MODEL)
    monkeypatch.delenv("EMS_GEMINI_API_KEY_PARAMETER", raising=False)
    _clear_caches()
    yield gemini
    _clear_caches()


# --- in process ---------------------------------------------------------------------------


def test_the_models_text_is_the_answer(configured: FakeGemini) -> None:
    configured.answer = "  Meter A used 3.2 kWh yesterday.  "
    assert GeminiAssistant().answer("How much did I use?", "Meter 'A' (id m-1)") == "Meter A used 3.2 kWh yesterday."


def test_the_request_carries_the_question_the_context_the_system_instruction_and_the_key(
    configured: FakeGemini
) -> None:
    GeminiAssistant().answer("Why was my bill high?", "Meter 'Kitchen' (id m-kitchen-42), hourly limit 2.0 kWh")
    (request,) = configured.wait_for_requests(1)
    assert request.model == MODEL and request.path.endswith(f"/models/{MODEL}:generateContent")
    assert request.headers["x-goog-api-key"] == "test-key"
    assert "Why was my bill high?" in request.text and "m-kitchen-42" in request.text
    assert request.system_instruction == SYSTEM_INSTRUCTION


def test_a_model_slower_than_the_timeout_is_unavailable_within_about_the_timeout(configured: FakeGemini) -> None:
    configured.mode = "slow"
    configured.delay_s = 20.0
    started = time.monotonic()
    with pytest.raises(AiUnavailableError):
        GeminiAssistant().answer("How much did I use?", "no meters")
    # Far sooner than the fake's 20 s stall: the timeout cut the call short (with room for a busy machine).
    assert time.monotonic() - started < TIMEOUT_S + 5
    assert len(configured.requests) == 1


def test_an_error_status_is_unavailable_and_not_retried(configured: FakeGemini) -> None:
    configured.mode = "error"
    with pytest.raises(AiUnavailableError):
        GeminiAssistant().answer("How much did I use?", "no meters")
    assert len(configured.requests) == 1


def test_an_empty_answer_is_unavailable(configured: FakeGemini) -> None:
    configured.answer = "   "
    with pytest.raises(AiUnavailableError):
        GeminiAssistant().answer("How much did I use?", "no meters")


def test_without_a_key_the_model_is_not_asked(gemini: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EMS_GEMINI_API_KEY", "EMS_GEMINI_API_KEY_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMS_GEMINI_BASE_URL", gemini.url)
    _clear_caches()
    try:
        with pytest.raises(AiUnavailableError):
            GeminiAssistant().answer("How much did I use?", "no meters")
    finally:
        _clear_caches()
    assert gemini.requests == []


# --- through the runtime ------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(fake: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """The product app under its own runtime, with Gemini pointed at the fake."""
    process = RuntimeProcess(
        tmp_path_factory.mktemp("ems-gemini"),
        extra_args=["--visibility-timeout", "1", "--max-receive-count", "3", "--log-format", "json",
                    "--frontend-dir", str(tmp_path_factory.mktemp("no-frontend"))],
        env={**FAST_HASHING, "EMS_GEMINI_API_KEY": "test-key", "EMS_GEMINI_BASE_URL": fake.url,
             "EMS_GEMINI_TIMEOUT_S": "2"},
    ).start()
    yield process
    assert process.stop() == 0, process.output


@pytest.fixture(scope="module")
def admin(runtime: RuntimeProcess) -> Account:
    return new_admin(runtime)


def ask(socket: Socket, text: str) -> str:
    echo = socket.request({"action": "chat.send", "text": text},
                          lambda f: f.get("type") == "chat.message" and f["message"]["text"] == text, "the echo")
    return str(echo["message"]["conversation_id"])


def answer_of(socket: Socket, conversation_id: str) -> dict[str, object]:
    frame = socket.expect(lambda f: f.get("type") == "chat.message"
                          and f["message"]["conversation_id"] == conversation_id
                          and f["message"]["sender_kind"] in ("ai", "system", "rule"), "the answer")[0]
    return dict(frame["message"])


def test_an_unmatched_question_gets_the_models_answer_from_the_askers_own_context(
    runtime: RuntimeProcess, admin: Account, gemini: FakeGemini
) -> None:
    # Given two clients, each with a device of their own, and a question no FAQ rule answers
    assert faq.match(QUESTION) is None and not faq.asks_for_human(QUESTION)
    asker, other = new_client(runtime, "asker"), new_client(runtime, "other")
    own_device = make_device(runtime, admin, [asker])
    others_device = make_device(runtime, admin, [other])
    gemini.answer = f"Your meter {own_device} used the most."
    with sockets(runtime, asker, admin) as (socket, console):
        # When the asker asks it
        conversation_id = ask(socket, QUESTION)
        # Then the model's answer reaches the asker and the admins as an `ai` message
        answer = answer_of(socket, conversation_id)
        assert answer["sender_kind"] == "ai" and answer["text"] == gemini.answer
        console.expect(lambda f: f.get("type") == "chat.message" and f["message"]["sender_kind"] == "ai"
                       and f["message"]["conversation_id"] == conversation_id, "the answer")
    # And the model was told about the asker's device, and nothing about the other client's
    (request,) = gemini.requests
    assert QUESTION in request.text and own_device in request.text and others_device not in request.text
    assert request.headers["x-goog-api-key"] == "test-key" and request.system_instruction == SYSTEM_INSTRUCTION
    stored = api(runtime, "GET", f"/chat/conversations/{conversation_id}/messages", asker).json()["items"]
    assert [m["sender_kind"] for m in stored] == ["client", "ai"]


@pytest.mark.parametrize("mode", ["error", "slow"])
def test_when_the_model_fails_the_client_gets_the_polite_fallback(
    runtime: RuntimeProcess, admin: Account, gemini: FakeGemini, mode: Mode
) -> None:
    gemini.mode = mode
    gemini.delay_s = 20.0
    client = new_client(runtime)
    with sockets(runtime, client) as (socket,):
        conversation_id = ask(socket, f"{QUESTION} ({uuid.uuid4().hex[:6]})")
        answer = answer_of(socket, conversation_id)
    assert answer["sender_kind"] == "system" and answer["text"] == FALLBACK_ANSWER
    assert len(gemini.requests) == 1

