"""Secrets of a deployed stage come from SSM Parameter Store (SecureString, decrypted), in-process
against moto: the JWT signing secret and the Gemini API key."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from chalicelib.chat import ai
from chalicelib.identity import tokens
from chalicelib.settings import get_settings
from tests.faked_stage import REGION, faked_stage


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.delenv("EMS_JWT_SECRET", raising=False)
    monkeypatch.delenv("EMS_GEMINI_API_KEY", raising=False)
    with faked_stage():
        yield boto3.client("ssm", region_name=REGION)
    get_settings.cache_clear()


def test_the_signing_secret_comes_from_its_parameter_decrypted(ssm: object, monkeypatch: pytest.MonkeyPatch) -> None:
    ssm.put_parameter(Name="/ems/test/jwt", Value="s3cret-from-ssm" * 3, Type="SecureString")  # type: ignore[attr-defined]
    monkeypatch.setenv("EMS_JWT_SECRET_PARAMETER", "/ems/test/jwt")
    get_settings.cache_clear()

    assert tokens.signing_secret() == "s3cret-from-ssm" * 3
    token, _ = tokens.issue("u1", "ada", "client")
    assert tokens.verify(token).user_id == "u1"


def test_the_gemini_key_comes_from_its_parameter(ssm: object, monkeypatch: pytest.MonkeyPatch) -> None:
    ssm.put_parameter(Name="/ems/test/gemini", Value="gemini-key-1", Type="SecureString")  # type: ignore[attr-defined]
    monkeypatch.setenv("EMS_GEMINI_API_KEY_PARAMETER", "/ems/test/gemini")
    get_settings.cache_clear()

    assert ai._api_key(get_settings()) == "gemini-key-1"
