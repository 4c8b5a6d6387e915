"""Answers from Gemini through the maintained `google-genai` SDK.

The model sees only the asking user's own devices and recent consumption. Any failure
(not configured, timeout, an error answer, an empty answer) is `AiUnavailableError`, and
the chat falls back to a polite answer and the offer of a human.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from chalicelib import aws
from chalicelib.observability import logger
from chalicelib.settings import Settings, get_settings

SYSTEM_INSTRUCTION = (
    "You are the support assistant of an energy management service. Answer briefly (at most "
    "four sentences), in the user's language, about their energy consumption, alerts, limits "
    "and tariffs, using only the account context given. If the question needs an administrator "
    "(changing limits, assigning meters, billing disputes), say so and suggest typing 'human'. "
    "Never invent readings that are not in the context."
)


class AiUnavailableError(Exception):
    """No AI answer this time (the reason is logged)."""


def _api_key(settings: Settings) -> str | None:
    if settings.gemini_api_key is not None:
        return settings.gemini_api_key.get_secret_value()
    if settings.gemini_api_key_parameter:
        return aws.secure_parameter(settings.gemini_api_key_parameter)
    return None


@lru_cache(maxsize=1)
def _client() -> Any:
    from google import genai
    from google.genai import types

    settings = get_settings()
    key = _api_key(settings)
    if not key:
        return None
    options = types.HttpOptions(
        timeout=int(settings.gemini_timeout_s * 1000),
        base_url=settings.gemini_base_url,
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=key, http_options=options)


class GeminiAssistant:
    """Asks Gemini one question with the user's own context."""

    def answer(self, question: str, context: str) -> str:
        try:
            client = _client()
        except Exception as exc:
            logger.warning("Gemini client not available", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            raise AiUnavailableError(str(exc)) from exc
        if client is None:
            raise AiUnavailableError("Gemini is not configured")
        from google.genai import types

        settings = get_settings()
        try:
            response = client.models.generate_content(
                model=settings.gemini_model,
                contents=f"Account context:\n{context}\n\nQuestion: {question}",
                config=types.GenerateContentConfig(system_instruction=SYSTEM_INSTRUCTION,
                                                   max_output_tokens=400, temperature=0.3),
            )
            text = (response.text or "").strip()
        except Exception as exc:
            logger.warning("Gemini did not answer", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            raise AiUnavailableError(str(exc)) from exc
        if not text:
            raise AiUnavailableError("empty answer")
        return text[:4000]
