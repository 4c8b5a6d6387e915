"""Identity over real HTTP: who may call what, tokens, input checking, throttling, user events.

Given the product app under the local runtime (`ems`), requests go in through its REST edge and
the contract's statuses and error bodies come out. Usernames carry a random suffix because the
runtime, and its login throttling, is shared by the whole test session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests

from tests.accounts import (
    ERROR_CODES,
    PASSWORD,
    Account,
    assert_error,
    caller_matrix,
    new_client,
    sign_in,
    unique_name,
)
from tests.harness import RuntimeProcess, wait_for

NEW_PASSWORD = "battery staple 2"
ISSUER, AUDIENCE = "ems", "ems-api"
TIMEOUT_S = 30


# --- helpers ------------------------------------------------------------------------------


def call(ems: RuntimeProcess, method: str, path: str, *, token: str | None = None, json_body: Any = None,
         data: bytes | str | None = None, headers: dict[str, str] | None = None) -> requests.Response:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, f"{ems.rest_url}{path}", json=json_body, data=data, headers=all_headers,
                            timeout=TIMEOUT_S)


def login(ems: RuntimeProcess, username: str, password: str) -> requests.Response:
    return call(ems, "POST", "/auth/login", json_body={"username": username, "password": password})


def new_admin(ems: RuntimeProcess, by: Account) -> Account:
    """An admin created by another over the API (quicker than the create-admin command)."""
    username = unique_name("admin")
    response = call(ems, "POST", "/users", token=by.token,
                    json_body={"username": username, "password": PASSWORD, "role": "admin"})
    assert response.status_code == 201, response.text
    return sign_in(ems, username)


@pytest.fixture(scope="session")
def secret(ems: RuntimeProcess, admin: Account) -> str:
    """The runtime's token signing secret, created by the first sign-in."""
    return (ems.data_dir / "jwt-secret").read_text().strip()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(account: Account, role: Any = "client", **overrides: Any) -> dict[str, Any]:
    now = time.time()
    claims: dict[str, Any] = {
        "sub": account.id, "username": account.username, "role": role,
        "iat": round(now, 3), "exp": int(now) + 600, "iss": ISSUER, "aud": AUDIENCE,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def hand_signed(header: dict[str, Any], claims: dict[str, Any], secret: str) -> str:
    """A JWT with any header, HMAC-SHA256-signed by hand (no library refuses to build it)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def with_payload(token: str, claims: dict[str, Any]) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


def with_flipped_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1:]}"


# --- who may call what --------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    client: Account  # the target of /users/{id}
    other: Account
    admin: Account


CALLERS = ("anonymous", "client", "other_client", "admin")
Request = tuple[str, str, Any]
RouteCase = Callable[[World, "Account | None"], Request]


def _own_or_client(world: World, caller: Account | None) -> Account:
    return caller or world.client


ROUTES: dict[str, tuple[RouteCase, tuple[int, int, int, int]]] = {
    # route: (request for a caller, statuses for anonymous, client, other client, admin)
    "POST /auth/register": (
        lambda w, c: ("POST", "/auth/register", {"username": unique_name(), "password": PASSWORD}),
        (201, 201, 201, 201)),
    "POST /auth/login": (
        lambda w, c: ("POST", "/auth/login", {"username": _own_or_client(w, c).username, "password": PASSWORD}),
        (200, 200, 200, 200)),
    "GET /auth/me": (lambda w, c: ("GET", "/auth/me", None), (401, 200, 200, 200)),
    "PUT /auth/me": (lambda w, c: ("PUT", "/auth/me", {"name": "Renamed Self"}), (401, 200, 200, 200)),
    "POST /auth/password": (
        lambda w, c: ("POST", "/auth/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        (401, 204, 204, 204)),
    "POST /auth/logout": (lambda w, c: ("POST", "/auth/logout", None), (401, 204, 204, 204)),
    "GET /users": (lambda w, c: ("GET", "/users?limit=5", None), (401, 403, 403, 200)),
    "POST /users": (
        lambda w, c: ("POST", "/users", {"username": unique_name(), "password": PASSWORD}),
        (401, 403, 403, 201)),
    "GET /users/{id}": (lambda w, c: ("GET", f"/users/{w.client.id}", None), (401, 200, 404, 200)),
    "PUT /users/{id}": (lambda w, c: ("PUT", f"/users/{w.client.id}", {"name": "Renamed"}), (401, 403, 403, 200)),
    "DELETE /users/{id}": (lambda w, c: ("DELETE", f"/users/{w.client.id}", None), (401, 403, 403, 204)),
}
MATRIX = caller_matrix(ROUTES, CALLERS)


@pytest.mark.parametrize(("route", "caller", "status"), MATRIX)
def test_each_identity_route_answers_each_kind_of_caller_as_the_contract_says(
    ems: RuntimeProcess, admin: Account, route: str, caller: str, status: int
) -> None:
    world = World(client=new_client(ems), other=new_client(ems, "other"), admin=new_admin(ems, admin))
    account = {"anonymous": None, "client": world.client, "other_client": world.other,
               "admin": world.admin}[caller]
    method, path, body = ROUTES[route][0](world, account)

    response = call(ems, method, path, token=account.token if account else None, json_body=body)

    if status >= 400:
        assert_error(response, status, ERROR_CODES[status])
    else:
        assert response.status_code == status, response.text
        if status == 204:
            assert response.content == b""
        else:
            assert isinstance(response.json(), dict)


def test_a_client_reading_another_user_learns_nothing_more_than_from_an_unknown_id(
    ems: RuntimeProcess, admin: Account
) -> None:
    client, other = new_client(ems), new_client(ems, "other")
    another = call(ems, "GET", f"/users/{other.id}", token=client.token)
    unknown = call(ems, "GET", f"/users/{uuid.uuid4()}", token=client.token)
    assert_error(another, 404, "not_found")
    assert another.json() == unknown.json()
    itself = call(ems, "GET", f"/users/{client.id}", token=client.token)
    assert itself.status_code == 200
    assert itself.json()["id"] == client.id and itself.json()["role"] == "client"


def test_registration_answers_201_with_a_client_user_and_no_secret(ems: RuntimeProcess) -> None:
    username = unique_name("Reg")
    response = call(ems, "POST", "/auth/register",
                    json_body={"username": username, "password": PASSWORD, "name": "Reggie", "email": "r@ex.com"})
    assert response.status_code == 201, response.text
    user = response.json()["user"]
    assert set(user) == {"id", "username", "role", "name", "email", "created_at"}
    assert (user["username"], user["role"], user["name"], user["email"]) == (username, "client", "Reggie", "r@ex.com")
    signed_in = login(ems, username.lower(), PASSWORD)  # names are case-insensitive at sign-in too
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0 and body["user"] == user


def test_an_admin_reads_changes_and_deletes_a_user_and_the_name_becomes_free(
    ems: RuntimeProcess, admin: Account
) -> None:
    client = new_client(ems)
    changed = call(ems, "PUT", f"/users/{client.id}", token=admin.token,
                   json_body={"name": "Changed", "email": "c@example.com", "role": "admin"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["email"], changed.json()["role"]) == (
        "Changed", "c@example.com", "admin")
    # A new role ends the sessions opened with the old one: the client token is refused, a new sign-in
    # carries the new role.
    assert_error(call(ems, "GET", "/users?limit=1", token=client.token), 401, "unauthorized")
    promoted = sign_in(ems, client.username)
    assert call(ems, "GET", "/users?limit=1", token=promoted.token).status_code == 200

    assert call(ems, "DELETE", f"/users/{client.id}", token=admin.token).status_code == 204
    assert_error(call(ems, "GET", f"/users/{client.id}", token=admin.token), 404, "not_found")
    assert_error(call(ems, "DELETE", f"/users/{client.id}", token=admin.token), 404, "not_found")
    again = call(ems, "POST", "/auth/register", json_body={"username": client.username, "password": PASSWORD})
    assert again.status_code == 201, again.text


def test_a_demoted_admin_loses_admin_routes_at_once(ems: RuntimeProcess, admin: Account) -> None:
    second = new_admin(ems, admin)
    assert call(ems, "GET", "/users?limit=1", token=second.token).status_code == 200
    demoted = call(ems, "PUT", f"/users/{second.id}", token=admin.token, json_body={"role": "client"})
    assert demoted.status_code == 200, demoted.text
    # The admin session ends with the role; signed in again, the user is a client
    assert_error(call(ems, "GET", "/users?limit=1", token=second.token), 401, "unauthorized")
    again = sign_in(ems, second.username)
    assert_error(call(ems, "GET", "/users?limit=1", token=again.token), 403, "forbidden")


# --- tokens -------------------------------------------------------------------------------

BadToken = Callable[[str, Account], str]


def _without(claim: str) -> BadToken:
    return lambda secret, account: jwt.encode(claims_for(account, **{claim: None}), secret, algorithm="HS256")


BAD_TOKENS: dict[str, BadToken] = {
    "expired": lambda s, a: jwt.encode(claims_for(a, iat=time.time() - 7200, exp=int(time.time()) - 3600), s,
                                       algorithm="HS256"),
    "tampered signature": lambda s, a: with_flipped_signature(jwt.encode(claims_for(a), s, algorithm="HS256")),
    "tampered payload (role raised)": lambda s, a: with_payload(
        jwt.encode(claims_for(a), s, algorithm="HS256"), claims_for(a, role="admin", username="someone")),
    "signed with another secret": lambda s, a: jwt.encode(claims_for(a), "another-secret-" * 4, algorithm="HS256"),
    "wrong issuer": lambda s, a: jwt.encode(claims_for(a, iss="someone-else"), s, algorithm="HS256"),
    "wrong audience": lambda s, a: jwt.encode(claims_for(a, aud="another-api"), s, algorithm="HS256"),
    "HS512 with the right secret": lambda s, a: jwt.encode(claims_for(a), s, algorithm="HS512"),
    "RS256 header, HMAC signature": lambda s, a: hand_signed({"alg": "RS256", "typ": "JWT"}, claims_for(a), s),
    "alg none": lambda s, a: (f"{b64url(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}."
                              f"{b64url(json.dumps(claims_for(a)).encode())}."),
    "alg none, HMAC signature": lambda s, a: hand_signed({"alg": "none"}, claims_for(a), s),
    "issued in the future": lambda s, a: jwt.encode(claims_for(a, iat=time.time() + 3600), s, algorithm="HS256"),
    "unknown user": lambda s, a: jwt.encode(claims_for(a, sub=str(uuid.uuid4())), s, algorithm="HS256"),
    "admin-counter id as subject": lambda s, a: jwt.encode(claims_for(a, sub="#admins"), s, algorithm="HS256"),
    "subject not a string": lambda s, a: hand_signed({"alg": "HS256", "typ": "JWT"}, claims_for(a, sub=7), s),
    "role not a string": lambda s, a: jwt.encode(claims_for(a, role=["admin"]), s, algorithm="HS256"),
    "iat not a number": lambda s, a: hand_signed({"alg": "HS256", "typ": "JWT"}, claims_for(a, iat="yesterday"), s),
    "garbage": lambda s, a: "garbage",
    "three garbage parts": lambda s, a: "a.b.c",
    "json header only": lambda s, a: b64url(b'{"alg":"HS256"}') + "..",
    **{f"missing {claim}": _without(claim) for claim in ("sub", "username", "role", "iat", "exp", "iss", "aud")},
}


def test_a_token_forged_with_the_runtime_secret_and_right_claims_is_accepted(
    ems: RuntimeProcess, secret: str
) -> None:
    # The control for the rejections below: the forging itself is sound.
    client = new_client(ems)
    token = jwt.encode(claims_for(client), secret, algorithm="HS256")
    response = call(ems, "GET", "/auth/me", token=token)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == client.id


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_every_kind_of_bad_token_gets_401(ems: RuntimeProcess, secret: str, kind: str) -> None:
    client = new_client(ems)
    response = call(ems, "GET", "/auth/me", token=BAD_TOKENS[kind](secret, client))
    assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer"])
def test_a_missing_or_non_bearer_authorization_header_gets_401(ems: RuntimeProcess, header: str) -> None:
    response = call(ems, "GET", "/auth/me", headers={"Authorization": header} if header else {})
    assert_error(response, 401, "unauthorized")


def test_the_token_of_a_deleted_user_gets_401(ems: RuntimeProcess, admin: Account) -> None:
    client = new_client(ems)
    assert call(ems, "DELETE", f"/users/{client.id}", token=admin.token).status_code == 204
    assert_error(call(ems, "GET", "/auth/me", token=client.token), 401, "unauthorized")
    assert_error(login(ems, client.username, PASSWORD), 401, "unauthorized")


def test_logout_revokes_every_earlier_token_and_a_new_login_works(ems: RuntimeProcess) -> None:
    client = new_client(ems)
    second_session = sign_in(ems, client.username)
    assert call(ems, "GET", "/auth/me", token=second_session.token).status_code == 200

    assert call(ems, "POST", "/auth/logout", token=client.token).status_code == 204

    for token in (client.token, second_session.token):
        assert_error(call(ems, "GET", "/auth/me", token=token), 401, "unauthorized")
        assert_error(call(ems, "POST", "/auth/logout", token=token), 401, "unauthorized")
    time.sleep(0.01)
    fresh = sign_in(ems, client.username)
    assert call(ems, "GET", "/auth/me", token=fresh.token).status_code == 200


def test_a_password_change_needs_the_current_password_and_ends_earlier_sessions(ems: RuntimeProcess) -> None:
    client = new_client(ems)
    wrong = call(ems, "POST", "/auth/password", token=client.token,
                 json_body={"current_password": "not the password", "new_password": NEW_PASSWORD})
    assert_error(wrong, 422, "validation_error", {"current_password"})
    assert call(ems, "GET", "/auth/me", token=client.token).status_code == 200  # nothing changed

    changed = call(ems, "POST", "/auth/password", token=client.token,
                   json_body={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert changed.status_code == 204, changed.text

    assert_error(call(ems, "GET", "/auth/me", token=client.token), 401, "unauthorized")
    assert_error(login(ems, client.username, PASSWORD), 401, "unauthorized")
    time.sleep(0.01)
    fresh = sign_in(ems, client.username, NEW_PASSWORD)
    assert call(ems, "GET", "/auth/me", token=fresh.token).status_code == 200


def test_an_admin_setting_a_password_ends_that_users_sessions(ems: RuntimeProcess, admin: Account) -> None:
    client = new_client(ems)
    reset = call(ems, "PUT", f"/users/{client.id}", token=admin.token, json_body={"password": NEW_PASSWORD})
    assert reset.status_code == 200, reset.text
    assert_error(call(ems, "GET", "/auth/me", token=client.token), 401, "unauthorized")
    time.sleep(0.01)
    assert sign_in(ems, client.username, NEW_PASSWORD).id == client.id


# --- input checking -----------------------------------------------------------------------


def test_malformed_json_gets_400_invalid_json_on_every_identity_body(ems: RuntimeProcess, admin: Account) -> None:
    client = new_client(ems)
    cases = [
        ("POST", "/auth/register", None),
        ("POST", "/auth/login", None),
        ("PUT", "/auth/me", client.token),
        ("POST", "/auth/password", client.token),
        ("POST", "/users", admin.token),
        ("PUT", f"/users/{client.id}", admin.token),
    ]
    for method, path, token in cases:
        for body in ('{"username": ', "{'username': 'single quotes'}", "not json", '{"a": 1} trailing'):
            response = call(ems, method, path, token=token, data=body,
                            headers={"Content-Type": "application/json"})
            assert_error(response, 400, "invalid_json")


SCHEMA_CASES = [
    pytest.param({}, {"username", "password"}, id="missing fields"),
    pytest.param({"username": 123, "password": PASSWORD}, {"username"}, id="username not a string"),
    pytest.param({"username": "valid_name", "password": 12345678}, {"password"}, id="password not a string"),
    pytest.param({"username": "valid_name", "password": PASSWORD, "role": "admin"}, {"role"},
                 id="unknown field role"),
    pytest.param({"username": "valid_name", "password": "seven77"}, {"password"}, id="password of 7"),
    pytest.param({"username": "bad name!", "password": PASSWORD}, {"username"}, id="username with space"),
    pytest.param({"username": "ab", "password": PASSWORD}, {"username"}, id="username of 2"),
    pytest.param({"username": "x" * 33, "password": PASSWORD}, {"username"}, id="username of 33"),
    pytest.param({"username": "ünïcødé", "password": PASSWORD}, {"username"}, id="non-ascii username"),
    pytest.param({"username": "valid_name", "password": PASSWORD, "email": "not-an-email"}, {"email"},
                 id="bad email"),
    pytest.param({"username": "valid_name", "password": "p" * 257}, {"password"}, id="password of 257"),
    pytest.param({"username": "valid_name", "password": PASSWORD, "name": 1e400}, {"name"}, id="infinite name"),
    pytest.param({"username": None, "password": None}, {"username", "password"}, id="nulls"),
    pytest.param({"username": {"$gt": ""}, "password": {"$gt": ""}}, {"username", "password"}, id="operators"),
    pytest.param([], {"body"}, id="array body"),
    pytest.param(None, {"body"}, id="null body"),
    pytest.param("username", {"body"}, id="string body"),
    pytest.param(10**30, {"body"}, id="huge number body"),
]


@pytest.mark.parametrize(("body", "fields"), SCHEMA_CASES)
def test_a_registration_breaking_the_schema_gets_422_naming_the_field(
    ems: RuntimeProcess, body: Any, fields: set[str]
) -> None:
    response = call(ems, "POST", "/auth/register", data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert_error(response, 422, "validation_error", fields)


def test_other_identity_bodies_breaking_their_schema_get_422_naming_the_field(
    ems: RuntimeProcess, admin: Account
) -> None:
    client = new_client(ems)
    cases = [
        ("POST", "/auth/login", None, {"username": "someone"}, {"password"}),
        ("POST", "/auth/login", None, {"username": "", "password": ""}, {"username", "password"}),
        ("PUT", "/auth/me", client.token, {"role": "admin"}, {"role"}),
        ("PUT", "/auth/me", client.token, {"email": "nope"}, {"email"}),
        ("POST", "/auth/password", client.token, {"current_password": PASSWORD, "new_password": "short"},
         {"new_password"}),
        ("POST", "/auth/password", client.token, {"new_password": NEW_PASSWORD}, {"current_password"}),
        ("POST", "/users", admin.token, {"username": unique_name(), "password": PASSWORD, "role": "root"}, {"role"}),
        ("PUT", f"/users/{client.id}", admin.token, {"role": "superuser"}, {"role"}),
        ("PUT", f"/users/{client.id}", admin.token, {"password": "short"}, {"password"}),
        ("PUT", f"/users/{client.id}", admin.token, {"id": "another-id"}, {"id"}),
    ]
    for method, path, token, body, fields in cases:
        assert_error(call(ems, method, path, token=token, json_body=body), 422, "validation_error", fields)
    assert call(ems, "GET", "/auth/me", token=client.token).json()["role"] == "client"


def test_an_empty_body_is_a_schema_error_not_a_crash(ems: RuntimeProcess) -> None:
    response = call(ems, "POST", "/auth/register", data=b"", headers={"Content-Type": "application/json"})
    assert_error(response, 422, "validation_error")


def test_a_body_over_256_kib_gets_413(ems: RuntimeProcess) -> None:
    body = {"username": unique_name(), "password": PASSWORD, "name": "n" * (257 * 1024)}
    assert_error(call(ems, "POST", "/auth/register", json_body=body), 413, "payload_too_large")
    assert_error(call(ems, "POST", "/auth/login", json_body=body), 413, "payload_too_large")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_by_content_type_gets_415(ems: RuntimeProcess, content_type: str) -> None:
    username = unique_name()
    response = call(ems, "POST", "/auth/register", data=json.dumps({"username": username, "password": PASSWORD}),
                    headers={"Content-Type": content_type})
    assert_error(response, 415, "unsupported_media_type")
    assert_error(login(ems, username, PASSWORD), 401, "unauthorized")  # nobody was created


FUZZ_BODIES = [
    pytest.param("[" * 50_000 + "]" * 50_000, id="deeply nested"),
    pytest.param('{"username": 1' + "0" * 5000 + ', "password": "x"}', id="5000-digit number"),
    pytest.param('{"username": "valid_name", "password": "correct horse 1", "name": "\\ud800"}', id="lone surrogate"),
    pytest.param('{"username": "\\u0000\\u0000\\u0000", "password": "correct horse 1"}', id="NUL username"),
    pytest.param('{"username": "valid_name", "password": "' + "\\u0000" * 8 + '"}', id="NUL password"),
    pytest.param('{"username": "' + "a" * 10_000 + '", "password": "x"}', id="10000-char username"),
    pytest.param('{"username": "a", "username": "b", "password": "correct horse 1"}', id="duplicate keys"),
    pytest.param("\ufeff{}", id="byte order mark"),
    pytest.param("NaN", id="NaN body"),
    pytest.param('{"username": NaN, "password": Infinity}', id="NaN fields"),
    pytest.param('"\\ud83d"', id="lone surrogate body"),
    pytest.param("\x00\x01\x02", id="control bytes"),
]


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login"])
@pytest.mark.parametrize("body", FUZZ_BODIES)
def test_fuzz_ish_bodies_never_get_a_500(ems: RuntimeProcess, path: str, body: str) -> None:
    response = call(ems, "POST", path, data=body.encode("utf-8", "surrogatepass"),
                    headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"error"}, response.text


def test_invalid_utf8_bytes_get_400_not_a_500(ems: RuntimeProcess) -> None:
    response = call(ems, "POST", "/auth/register", data=b'{"username": "\xff\xfe", "password": "x"}',
                    headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert set(response.json()) == {"error"}


def test_unicode_names_and_emails_round_trip(ems: RuntimeProcess) -> None:
    username = unique_name()
    body = {"username": username, "password": "pässwörd ⚡ 密码", "name": "Zoë ⚡ 山田", "email": "zoë@exämple.com"}
    created = call(ems, "POST", "/auth/register", json_body=body)
    assert created.status_code == 201, created.text
    assert created.json()["user"]["name"] == "Zoë ⚡ 山田"
    assert sign_in(ems, username, "pässwörd ⚡ 密码").username == username


# --- uniqueness ---------------------------------------------------------------------------


def test_eight_concurrent_registrations_of_one_name_create_exactly_one_user(
    ems: RuntimeProcess, admin: Account
) -> None:
    username = unique_name("Race")
    start = threading.Barrier(8)
    statuses: list[int] = []

    def register() -> None:
        start.wait()
        response = call(ems, "POST", "/auth/register", json_body={"username": username, "password": PASSWORD})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(statuses) == [201] + [409] * 7
    other_case = call(ems, "POST", "/auth/register", json_body={"username": username.upper(), "password": PASSWORD})
    assert_error(other_case, 409, "conflict", {"username"})
    found = call(ems, "GET", f"/users?q={username.lower()}&limit=200", token=admin.token).json()
    assert [u["username"] for u in found["items"]] == [username]


def test_an_admin_cannot_rename_a_user_onto_a_taken_name(ems: RuntimeProcess, admin: Account) -> None:
    first, second = new_client(ems), new_client(ems)
    clash = call(ems, "PUT", f"/users/{second.id}", token=admin.token, json_body={"username": first.username.upper()})
    assert_error(clash, 409, "conflict", {"username"})
    renamed = call(ems, "PUT", f"/users/{second.id}", token=admin.token,
                   json_body={"username": second.username + "x"})
    assert renamed.status_code == 200, renamed.text
    assert sign_in(ems, second.username + "x").id == second.id
    # The old name is released with the rename.
    assert call(ems, "POST", "/auth/register",
                json_body={"username": second.username, "password": PASSWORD}).status_code == 201


# --- sign-in ------------------------------------------------------------------------------


def test_unknown_user_and_wrong_password_get_the_same_401_body(ems: RuntimeProcess) -> None:
    client = new_client(ems)
    wrong_password = login(ems, client.username, "not the password")
    unknown_user = login(ems, unique_name("ghost"), "not the password")
    assert_error(wrong_password, 401, "unauthorized")
    assert wrong_password.json() == unknown_user.json()


def test_five_failures_lock_the_username_with_429_and_retry_after(ems: RuntimeProcess) -> None:
    client = new_client(ems)
    for _ in range(5):
        assert_error(login(ems, client.username, "not the password"), 401, "unauthorized")

    for username, password in ((client.username, "not the password"), (client.username, PASSWORD),
                               (client.username.upper(), PASSWORD)):
        locked = login(ems, username, password)
        assert_error(locked, 429, "too_many_requests")
        assert 1 <= int(locked.headers["Retry-After"]) <= 300

    # The lock is per username: another user signs in as usual, and existing sessions go on.
    assert sign_in(ems, new_client(ems).username)
    assert call(ems, "GET", "/auth/me", token=client.token).status_code == 200


def test_parallel_guesses_cannot_pass_the_limit(ems: RuntimeProcess) -> None:
    # Given a user, When 20 wrong passwords arrive at once from one address
    client = new_client(ems)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: login(ems, client.username, "guess").status_code, range(20)))
    # Then at most five were checked (a slot is taken before the hash), the rest throttled
    assert answers.count(401) <= 5 and answers.count(429) >= 15 and set(answers) <= {401, 429}, answers


class _FromAddress(requests.adapters.HTTPAdapter):
    """Connections made from another loopback address (another client's machine)."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


def test_a_guesser_locked_out_does_not_lock_the_owner_out(ems: RuntimeProcess) -> None:
    # Given a guesser who exhausted the attempts for a username from its address
    client = new_client(ems)
    for _ in range(5):
        assert_error(login(ems, client.username, "guess"), 401, "unauthorized")
    assert_error(login(ems, client.username, PASSWORD), 429, "too_many_requests")
    # When the owner signs in from their own address, Then it works
    with requests.Session() as owner:
        owner.mount("http://", _FromAddress("127.0.0.2"))
        response = owner.post(f"{ems.rest_url}/auth/login", json={"username": client.username, "password": PASSWORD},
                              timeout=30)
    assert response.status_code == 200, response.text


def test_failures_for_an_unknown_username_lock_it_just_the_same(ems: RuntimeProcess) -> None:
    ghost = unique_name("ghost")
    for _ in range(5):
        assert_error(login(ems, ghost, "whatever"), 401, "unauthorized")
    assert_error(login(ems, ghost, "whatever"), 429, "too_many_requests")


def test_a_successful_login_resets_the_failure_count(ems: RuntimeProcess) -> None:
    client = new_client(ems)
    for _ in range(4):
        assert_error(login(ems, client.username, "not the password"), 401, "unauthorized")
    sign_in(ems, client.username)
    for _ in range(4):
        assert_error(login(ems, client.username, "not the password"), 401, "unauthorized")
    assert login(ems, client.username, PASSWORD).status_code == 200


# --- listing ------------------------------------------------------------------------------


def test_the_user_list_pages_with_limit_and_next_cursor_without_repeats(ems: RuntimeProcess, admin: Account) -> None:
    mine = {new_client(ems, "page").id for _ in range(5)}
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(500):
        path = "/users?limit=7" + (f"&cursor={cursor}" if cursor else "")
        response = call(ems, "GET", path, token=admin.token)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}
        assert len(page["items"]) <= 7
        seen.extend(user["id"] for user in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None
    assert len(seen) == len(set(seen)), "a user was listed twice"
    assert mine <= set(seen)
    assert admin.id in seen


def test_the_user_list_is_by_username_and_searches_a_username_prefix_without_case(
    ems: RuntimeProcess, admin: Account
) -> None:
    marker = uuid.uuid4().hex[:10]
    made = [call(ems, "POST", "/auth/register", json_body={"username": f"U{marker}{suffix}", "password": PASSWORD})
            for suffix in ("c", "A", "b")]
    call(ems, "POST", "/users", token=admin.token,  # the marker in the name only: not a username prefix
         json_body={"username": unique_name(), "password": PASSWORD, "name": f"u{marker}"})
    new_client(ems)  # not matching

    found: list[str] = []
    cursor = None
    for _ in range(100):
        path = f"/users?q={marker[:6].upper()}{marker[6:]}&limit=2".replace("q=", "q=u") + (
            f"&cursor={cursor}" if cursor else "")
        page = call(ems, "GET", path, token=admin.token).json()
        found += [user["username"] for user in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert found == [f"U{marker}A", f"U{marker}b", f"U{marker}c"]
    assert {m.json()["user"]["username"] for m in made} == set(found)


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize("cursor", [
    pytest.param("not-a-cursor!", id="not base64"),
    pytest.param(_cursor(b"[1, 2]"), id="a list"),
    pytest.param(_cursor(b'{"other": "key"}'), id="another key"),
    pytest.param(_cursor(b"\xff\xfe"), id="not utf-8"),
    pytest.param(_cursor(b'{"id": 5}'), id="bare number"),
    pytest.param(_cursor(b'{"id": {"N": "5"}}'), id="number attribute"),
    pytest.param(_cursor(b'{"id": {"S": 5}}'), id="string attribute holding a number"),
    pytest.param(_cursor(b'{"id": {"S": ""}}'), id="empty string"),
])
def test_a_bad_cursor_gets_422(ems: RuntimeProcess, admin: Account, cursor: str) -> None:
    response = call(ems, "GET", f"/users?cursor={cursor}", token=admin.token)
    assert_error(response, 422, "validation_error", {"cursor"})


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"), ("q=" + "q" * 65, "q"), ("sort=name", "sort"),
])
def test_a_bad_list_query_gets_422_naming_the_parameter(
    ems: RuntimeProcess, admin: Account, query: str, field: str
) -> None:
    assert_error(call(ems, "GET", f"/users?{query}", token=admin.token), 422, "validation_error", {field})


# --- user events --------------------------------------------------------------------------


@pytest.fixture
def identity_events(ems: RuntimeProcess) -> Iterator[Callable[[], list[dict]]]:
    """A queue of this test's own on the identity topic; yields a function reading what arrived."""
    sqs, sns = ems.client("sqs"), ems.client("sns")
    queue_url = sqs.create_queue(QueueName=ems.name(f"test-{uuid.uuid4().hex[:8]}"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = sns.create_topic(Name=ems.name('identity-events'))["TopicArn"]  # the stage's own (idempotent)
    subscription = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                                 Attributes={"RawMessageDelivery": "true"}, ReturnSubscriptionArn=True)
    received: list[dict] = []

    def read() -> list[dict]:
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    yield read
    sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
    sqs.delete_queue(QueueUrl=queue_url)


def test_creating_changing_and_deleting_a_user_publishes_three_ordered_envelopes(
    ems: RuntimeProcess, admin: Account, identity_events: Callable[[], list[dict]]
) -> None:
    username = unique_name("evt")
    created = call(ems, "POST", "/users", token=admin.token,
                   json_body={"username": username, "password": PASSWORD, "name": "Eve"})
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    updated = call(ems, "PUT", f"/users/{user_id}", token=admin.token, json_body={"name": "Eve Changed"})
    assert updated.status_code == 200, updated.text
    assert call(ems, "DELETE", f"/users/{user_id}", token=admin.token).status_code == 204

    def three() -> list[dict] | None:
        mine = [e for e in identity_events() if e.get("entity_id") == user_id]
        return mine if len(mine) >= 3 else None

    events = sorted(wait_for(three, timeout_s=15, what="three user events"), key=lambda e: e["entity_version"])
    assert [e["type"] for e in events] == ["user.created", "user.updated", "user.deleted"]
    for event in events:
        assert set(event) == {"type", "event_id", "schema_version", "entity_id", "entity_version", "occurred_at",
                              "data"}
        assert event["schema_version"] == 1
        assert "password" not in json.dumps(event["data"])
    assert [e["entity_version"] for e in events] == sorted({e["entity_version"] for e in events})
    assert len({e["event_id"] for e in events}) == 3
    assert events[0]["occurred_at"] <= events[1]["occurred_at"] <= events[2]["occurred_at"]
    assert events[0]["data"] == created.json()
    assert events[1]["data"] == updated.json()
    assert events[2]["data"] == {"id": user_id, "username": username}


def test_registration_and_a_refused_duplicate_publish_one_created_event(
    ems: RuntimeProcess, identity_events: Callable[[], list[dict]]
) -> None:
    username = unique_name("evt")
    first = call(ems, "POST", "/auth/register", json_body={"username": username, "password": PASSWORD})
    assert first.status_code == 201
    assert call(ems, "POST", "/auth/register", json_body={"username": username, "password": PASSWORD}).status_code \
        == 409
    marker = new_client(ems)  # published after the duplicate: once it is seen, the duplicate's would be too

    def marker_seen() -> list[dict] | None:
        events = identity_events()
        return events if any(e["entity_id"] == marker.id for e in events) else None

    events = wait_for(marker_seen, timeout_s=15, what="the marker user's event")
    named = [e for e in events if e["type"] == "user.created" and e["data"].get("username") == username]
    assert len(named) == 1
    assert named[0]["entity_id"] == first.json()["user"]["id"] and named[0]["entity_version"] == 1



def test_logout_and_a_password_change_each_publish_sessions_revoked(
    ems: RuntimeProcess, identity_events: Callable[[], list[dict]]
) -> None:
    client = new_client(ems)
    assert call(ems, "POST", "/auth/logout", token=client.token).status_code == 204
    time.sleep(0.01)
    token = sign_in(ems, client.username).token
    assert call(ems, "POST", "/auth/password", token=token,
                json_body={"current_password": PASSWORD, "new_password": NEW_PASSWORD}).status_code == 204

    def two() -> list[dict] | None:
        mine = [e for e in identity_events()
                if e["entity_id"] == client.id and e["type"] == "user.sessions_revoked"]
        return mine if len(mine) >= 2 else None

    revoked = wait_for(two, timeout_s=15, what="two sessions_revoked events")
    assert len(revoked) == 2
    assert all(e["data"] == {"id": client.id} for e in revoked)
