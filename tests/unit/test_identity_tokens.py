"""Identity's pure parts, with no AWS at all: access tokens, password hashing, request models."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pydantic
import pytest
from argon2 import PasswordHasher

from chalicelib import errors, http
from chalicelib.identity import models, passwords, tokens
from chalicelib.settings import Settings, get_settings

SECRET = "unit-test-secret-" * 4
FAST_HASHING = {"EMS_ARGON2_MEMORY_KIB": "1024", "EMS_ARGON2_TIME_COST": "1", "EMS_ARGON2_PARALLELISM": "1"}


def _clear_caches() -> None:
    get_settings.cache_clear()
    passwords.hasher.cache_clear()
    passwords._dummy_hash.cache_clear()
    tokens._secret_cache.clear()


@pytest.fixture(autouse=True)
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A known signing secret and light hashing, read afresh by the settings."""
    for name in list(os.environ):
        if name.startswith("EMS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("EMS_JWT_SECRET", SECRET)
    monkeypatch.setenv("EMS_DATA_DIR", str(tmp_path))
    for name, value in FAST_HASHING.items():
        monkeypatch.setenv(name, value)
    _clear_caches()
    yield
    _clear_caches()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = time.time()
    values: dict[str, Any] = {"sub": "user-1", "username": "ada", "role": "client", "iat": round(now, 3),
                              "exp": int(now) + 600, "iss": "ems", "aud": "ems-api"}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def hand_signed(header: dict[str, Any], payload: dict[str, Any], secret: str = SECRET) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


# --- tokens -------------------------------------------------------------------------------


def test_an_issued_token_verifies_to_the_same_user_role_and_time() -> None:
    now = time.time()
    token, expires_in = tokens.issue("user-1", "ada", "admin", now=now)
    verified = tokens.verify(token)
    assert (verified.user_id, verified.username, verified.role) == ("user-1", "ada", "admin")
    assert verified.issued_at == pytest.approx(now, abs=0.001)
    assert expires_in == get_settings().access_token_ttl_s == 3600


def test_an_issued_token_carries_every_registered_claim_and_hs256() -> None:
    token, _ = tokens.issue("user-1", "ada", "client", now=1_000_000.0)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload == {"sub": "user-1", "username": "ada", "role": "client", "iat": 1_000_000.0,
                       "exp": 1_000_000 + 3600, "iss": "ems", "aud": "ems-api"}


def test_a_token_older_than_its_lifetime_is_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMS_ACCESS_TOKEN_TTL_S", "60")
    get_settings.cache_clear()
    token, expires_in = tokens.issue("user-1", "ada", "client", now=time.time() - 61)
    assert expires_in == 60
    with pytest.raises(errors.UnauthorizedError, match="expired"):
        tokens.verify(token)


def test_the_issuer_and_audience_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMS_JWT_ISSUER", "ems-prod")
    monkeypatch.setenv("EMS_JWT_AUDIENCE", "ems-prod-api")
    get_settings.cache_clear()
    token, _ = tokens.issue("user-1", "ada", "client")
    assert tokens.verify(token).user_id == "user-1"
    with pytest.raises(errors.UnauthorizedError):
        tokens.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))  # the default iss/aud


def _without(claim: str) -> Callable[[], str]:
    return lambda: jwt.encode(claims(**{claim: None}), SECRET, algorithm="HS256")


NONE_HEADER = json.dumps({"alg": "none", "typ": "JWT"}).encode()
BAD_TOKENS: dict[str, Callable[[], str]] = {
    "signed with another secret": lambda: jwt.encode(claims(), "x" * 48, algorithm="HS256"),
    "tampered payload": lambda: ".".join([
        jwt.encode(claims(), SECRET, algorithm="HS256").split(".")[0],
        b64url(json.dumps(claims(role="admin")).encode()),
        jwt.encode(claims(), SECRET, algorithm="HS256").split(".")[2],
    ]),
    "wrong issuer": lambda: jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"),
    "wrong audience": lambda: jwt.encode(claims(aud="other"), SECRET, algorithm="HS256"),
    "audience list without ours": lambda: jwt.encode(claims(aud=["a", "b"]), SECRET, algorithm="HS256"),
    "HS512 with the right secret": lambda: jwt.encode(claims(), SECRET, algorithm="HS512"),
    "HS384 with the right secret": lambda: jwt.encode(claims(), SECRET, algorithm="HS384"),
    "RS256 header, HMAC signature": lambda: hand_signed({"alg": "RS256", "typ": "JWT"}, claims()),
    "alg none": lambda: f"{b64url(NONE_HEADER)}.{b64url(json.dumps(claims()).encode())}.",
    "expired": lambda: jwt.encode(claims(iat=time.time() - 100, exp=int(time.time()) - 50), SECRET,
                                  algorithm="HS256"),
    "issued in the future": lambda: jwt.encode(claims(iat=time.time() + 600, exp=int(time.time()) + 1200),
                                               SECRET, algorithm="HS256"),
    "not yet valid": lambda: jwt.encode(claims(nbf=int(time.time()) + 600), SECRET, algorithm="HS256"),
    "subject a number": lambda: hand_signed({"alg": "HS256", "typ": "JWT"}, claims(sub=7)),
    "username a number": lambda: jwt.encode(claims(username=7), SECRET, algorithm="HS256"),
    "role a list": lambda: jwt.encode(claims(role=["admin"]), SECRET, algorithm="HS256"),
    "iat a string": lambda: hand_signed({"alg": "HS256", "typ": "JWT"}, claims(iat="now")),
    "exp a string": lambda: hand_signed({"alg": "HS256", "typ": "JWT"}, claims(exp="later")),
    "payload not an object": lambda: hand_signed({"alg": "HS256", "typ": "JWT"}, ["sub"]),  # type: ignore[arg-type]
    "empty": lambda: "",
    "garbage": lambda: "garbage",
    "two parts": lambda: "a.b",
    "three garbage parts": lambda: "a.b.c",
    **{f"missing {claim}": _without(claim) for claim in ("sub", "username", "role", "iat", "exp", "iss", "aud")},
}


def test_a_token_built_the_way_the_rejections_are_built_verifies() -> None:
    # The control for the rejections below.
    assert tokens.verify(jwt.encode(claims(), SECRET, algorithm="HS256")).user_id == "user-1"
    assert tokens.verify(hand_signed({"alg": "HS256", "typ": "JWT"}, claims())).user_id == "user-1"


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_every_kind_of_bad_token_is_refused_as_unauthorized(kind: str) -> None:
    with pytest.raises(errors.UnauthorizedError) as refused:
        tokens.verify(BAD_TOKENS[kind]())
    assert refused.value.invalid_token
    # and at the edge: 401 with the challenge of RFC 6750
    assert http.status_of(refused.value) == 401
    assert str(http.error_headers(refused.value)["WWW-Authenticate"]).startswith("Bearer")


def test_the_secret_setting_wins_over_the_local_secret_file(tmp_path: Path) -> None:
    assert tokens.signing_secret() == SECRET
    assert not (tmp_path / "jwt-secret").exists()


def test_without_a_secret_setting_one_is_generated_once_into_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("EMS_JWT_SECRET")
    data_dir = tmp_path / "nested" / "data"
    first = tokens.signing_secret(Settings(data_dir=data_dir))
    path = data_dir / "jwt-secret"
    assert path.read_text() == first and len(first) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tokens._secret_cache.clear()  # as another process would: it reads the same file
    assert tokens.signing_secret(Settings(data_dir=data_dir)) == first
    assert tokens.signing_secret(Settings(data_dir=tmp_path / "elsewhere")) != first


# --- passwords ----------------------------------------------------------------------------


def test_a_hashed_password_verifies_and_no_other_does() -> None:
    hashed = passwords.hash_password("correct horse 1")
    assert hashed.startswith("$argon2id$")
    assert "correct horse 1" not in hashed
    assert passwords.verify(hashed, "correct horse 1")
    assert not passwords.verify(hashed, "correct horse 2")
    assert not passwords.verify(hashed, "")
    assert passwords.hash_password("correct horse 1") != hashed  # salted


@pytest.mark.parametrize("stored", [None, "", "not a hash", "$argon2id$v=19$m=1024,t=1,p=1$broken"])
def test_verifying_against_no_or_a_broken_hash_says_no_without_raising(stored: str | None) -> None:
    assert passwords.verify(stored, "correct horse 1") is False


def test_a_hash_made_with_other_parameters_needs_a_rehash_and_a_current_one_does_not() -> None:
    current = passwords.hash_password("correct horse 1")
    older = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash("correct horse 1")
    assert not passwords.needs_rehash(current)
    assert passwords.needs_rehash(older)
    assert passwords.verify(older, "correct horse 1")  # still accepted until it is rehashed


def test_hashing_follows_the_argon2_settings() -> None:
    hashed = passwords.hash_password("correct horse 1")
    assert "$m=1024,t=1,p=1$" in hashed


# --- request models -----------------------------------------------------------------------


def _error_fields(exc: pydantic.ValidationError) -> set[str]:
    return {".".join(str(p) for p in error["loc"]) for error in exc.errors()}


def test_a_registration_is_a_client_with_a_trimmed_username_and_optional_profile() -> None:
    request = models.RegisterRequest.model_validate({"username": "  Ada.L-1_ ", "password": "12345678"})
    assert (request.username, request.name, request.email) == ("Ada.L-1_", "", None)
    assert "role" not in models.RegisterRequest.model_fields


@pytest.mark.parametrize(("body", "field"), [
    ({"password": "12345678"}, "username"),
    ({"username": "ada"}, "password"),
    ({"username": "ada", "password": "1234567"}, "password"),
    ({"username": "ada", "password": "x" * 257}, "password"),
    ({"username": "ad", "password": "12345678"}, "username"),
    ({"username": "a" * 33, "password": "12345678"}, "username"),
    ({"username": "ada lovelace", "password": "12345678"}, "username"),
    ({"username": "ada@home", "password": "12345678"}, "username"),
    ({"username": "ädä", "password": "12345678"}, "username"),
    ({"username": 123, "password": "12345678"}, "username"),
    ({"username": "ada", "password": 12345678}, "password"),
    ({"username": "ada", "password": "12345678", "email": "no-at-sign"}, "email"),
    ({"username": "ada", "password": "12345678", "email": "a@b"}, "email"),
    ({"username": "ada", "password": "12345678", "name": "n" * 101}, "name"),
    ({"username": "ada", "password": "12345678", "role": "admin"}, "role"),
])
def test_a_registration_breaking_a_rule_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(pydantic.ValidationError) as invalid:
        models.RegisterRequest.model_validate(body)
    assert field in _error_fields(invalid.value)


def test_creating_a_user_allows_only_the_two_roles() -> None:
    assert models.CreateUserRequest(username="ada", password="12345678").role == "client"
    assert models.CreateUserRequest(username="ada", password="12345678", role="admin").role == "admin"
    with pytest.raises(pydantic.ValidationError) as invalid:
        models.CreateUserRequest.model_validate({"username": "ada", "password": "12345678", "role": "root"})
    assert _error_fields(invalid.value) == {"role"}


def test_an_update_keeps_only_the_fields_sent() -> None:
    update = models.UpdateUserRequest.model_validate({"name": "Ada", "email": None})
    assert update.model_dump(exclude_unset=True) == {"name": "Ada", "email": None}
    assert models.UpdateUserRequest.model_validate({}).model_dump(exclude_unset=True) == {}
    with pytest.raises(pydantic.ValidationError):
        models.UpdateUserRequest.model_validate({"id": "other"})
    with pytest.raises(pydantic.ValidationError):
        models.UpdateMeRequest.model_validate({"role": "admin"})


def test_the_list_query_reads_strings_from_the_query_and_bounds_the_limit() -> None:
    query = models.ListUsersQuery.model_validate({"limit": "10", "q": "ada"})
    assert (query.limit, query.cursor, query.q) == (10, None, "ada")
    assert models.ListUsersQuery.model_validate({}).limit == 50
    for bad in ({"limit": "0"}, {"limit": "201"}, {"limit": "ten"}, {"q": "q" * 65}, {"sort": "name"}):
        with pytest.raises(pydantic.ValidationError):
            models.ListUsersQuery.model_validate(bad)


def test_a_user_as_returned_has_no_secret_field() -> None:
    assert set(models.UserOut.model_fields) == {"id", "username", "role", "name", "email", "created_at"}
    user = models.User(id="u1", username="ada", role="client", name="Ada", email=None, created_at="2026-01-01",
                       version=3, tokens_valid_after=12.5)
    assert user.out().model_dump() == {"id": "u1", "username": "ada", "role": "client", "name": "Ada",
                                       "email": None, "created_at": "2026-01-01"}


@pytest.mark.parametrize("fraction", [0.0, 0.1234565, 0.9999996, 0.123456, 0.5000004])
def test_ending_sessions_ends_tokens_of_that_microsecond_and_keeps_any_later_one(fraction: float) -> None:
    moment = int(time.time()) - 5 + fraction
    cutoff = tokens.sessions_end_now(moment)
    same = tokens.verify(tokens.issue("u1", "ada", "client", now=moment)[0]).issued_at
    next_tick = tokens.verify(tokens.issue("u1", "ada", "client", now=round(moment, 6) + 1e-6)[0]).issued_at
    earlier = tokens.verify(tokens.issue("u1", "ada", "client", now=moment - 0.5)[0]).issued_at

    assert earlier < cutoff and same < cutoff
    assert next_tick >= cutoff  # a sign-in a microsecond after a role change or sign-out is valid
