"""Identity in one process: the product app through `chalice.test` against moto, with a fake event bus.

Given identity's tables made from their definitions in the project's template under moto's
in-process mock, these check what needs the bus to fail on purpose or the number of admins to be known:
a change and its events are one write (a change whose event cannot be published stands, and the
outbox relay publishes the event later), the last admin stays, and the username claim is a
conditional write.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client
from chalice.test import TestHTTPClient as HttpClient
from moto import mock_aws
from pynamodb.models import Model

import app as product
from chalicelib import errors
from chalicelib.identity import passwords, repository, tokens
from chalicelib.identity.models import CreateUserRequest
from chalicelib.identity.service import IdentityService
from chalicelib.messages import SyncEvent
from chalicelib.platform import outbox
from chalicelib.settings import get_settings
from infra import TEMPLATE_PATH, parse_template
from tests.aws_calls import counted_calls
from tests.conftest import FAST_HASHING
from tests.faked_stage import forget_clients

PASSWORD = "correct horse 1"
IDENTITY_MODELS: tuple[type[Model], ...] = (
    repository.UserItem, repository.AdminCounter, repository.UsernameClaim, repository.LoginAttempts,
    outbox.OutboxItem,
)


@dataclass
class FakeBus:
    """Records published events; fails on purpose for the event types in `failing`."""

    failing: set[str] = field(default_factory=set)
    events: list[tuple[str, SyncEvent]] = field(default_factory=list)

    def publish(self, topic: str, events: Sequence[SyncEvent]) -> list[SyncEvent]:
        self.events += [(topic, event) for event in events if event.type not in self.failing]
        return [event for event in events if event.type in self.failing]

    def types(self) -> list[str]:
        return [event.type for _, event in self.events]


def _reset_cached_clients() -> None:
    forget_clients()
    passwords.hasher.cache_clear()
    passwords._dummy_hash.cache_clear()
    tokens._secret_cache.clear()


def create_identity_tables(stage: str) -> None:
    """Identity's tables as the template declares them (only these: the bus is fake)."""
    wanted = {model.Meta.table_name for model in IDENTITY_MODELS}
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    for resource in parse_template(TEMPLATE_PATH.read_text(encoding="utf-8"))["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::DynamoDB::Table":
            continue
        name = properties["TableName"]["Fn::Sub"].replace("${Stage}", stage)
        if name in wanted:
            wanted.discard(name)
            dynamodb.create_table(
                TableName=name, BillingMode="PAY_PER_REQUEST",
                **{k: properties[k] for k in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes")
                   if k in properties},
            )
    assert not wanted, f"the template declares no table {wanted}"


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeBus]:
    """A fresh stage under moto (tables from the template) and the app's identity on a fake bus."""
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "EMS_")):
            monkeypatch.delenv(name)
    # pynamodb bound the table names when `app` was imported; the settings must name the same stage.
    stage = repository.UserItem.Meta.table_name.removeprefix("ems-").removesuffix("-users")
    monkeypatch.setenv("EMS_STAGE", stage)
    monkeypatch.setenv("EMS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("EMS_JWT_SECRET", "in-process-test-secret-" * 3)
    monkeypatch.setenv("EMS_DATA_DIR", str(tmp_path))
    for name, value in FAST_HASHING.items():
        monkeypatch.setenv(name, value)
    _reset_cached_clients()
    fake = FakeBus()
    monkeypatch.setattr(product.identity, "_outbox", outbox.Outbox(fake))
    with mock_aws():
        create_identity_tables(stage)
        yield fake
    _reset_cached_clients()


@pytest.fixture
def http(bus: FakeBus, tmp_path: Path) -> HttpClient:
    # A project folder without a config, so the test client adds no stage environment of its own.
    return Client(product.app, project_dir=str(tmp_path)).http


def request(http: Any, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    raw = b"" if body is None else json.dumps(body).encode()
    return http.request(method, path, headers=headers, body=raw)


def sign_in(http: Any, username: str, password: str = PASSWORD) -> str:
    response = request(http, "POST", "/auth/login", {"username": username, "password": password})
    assert response.status_code == 200, response.body
    return str(response.json_body["access_token"])


def admin(username: str = "root") -> str:
    """A new admin, created as the app's own code would; returns its id."""
    return product.identity.create_user(CreateUserRequest(username=username, password=PASSWORD, role="admin")).id


def stored_users() -> dict[str, dict[str, Any]]:
    return {item.id: item.attribute_values for item in repository.UserItem.scan()
            if not item.id.startswith("#")}


def stored_claims() -> dict[str, str]:
    return {claim.username_key: claim.user_id for claim in repository.UsernameClaim.scan()}


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.body
    assert response.json_body["error"]["code"] == code, response.body


# --- a change and its events are one write: the outbox ----------------------------------


def staged() -> list[tuple[str, str, str]]:
    """The events in the outbox, oldest first: (topic, type, entity id)."""
    found = []
    for topic in outbox.TOPICS:
        for item in outbox.OutboxItem.query(topic):
            envelope = json.loads(item.message)
            found.append((item.key, topic, envelope["type"], envelope["entity_id"]))
    return [entry[1:] for entry in sorted(found)]


def relay(bus: FakeBus) -> int:
    return outbox.Outbox(bus).relay(grace_s=0)


def test_a_registration_whose_event_fails_stands_and_its_event_is_published_by_the_relay(
    bus: FakeBus, http: Any
) -> None:
    bus.failing.add("user.created")
    response = request(http, "POST", "/auth/register", {"username": "Ada", "password": PASSWORD})

    assert response.status_code == 201, response.body
    user_id = response.json_body["user"]["id"]
    assert set(stored_users()) == {user_id} and stored_claims() == {"ada": user_id}
    assert bus.events == []
    assert staged() == [("identity-events", "user.created", user_id)]
    assert relay(bus) == 0  # the bus still refuses it: it stays
    assert len(staged()) == 1

    bus.failing.clear()
    assert relay(bus) == 1
    assert bus.types() == ["user.created"] and staged() == []
    assert relay(bus) == 0


def test_the_relay_publishes_the_very_event_that_was_staged(bus: FakeBus) -> None:
    bus.failing.add("user.created")
    user = product.identity.create_user(CreateUserRequest(username="ada", password=PASSWORD, name="Ada"))
    (item,) = outbox.OutboxItem.query("identity-events")
    stored = json.loads(item.message)
    bus.failing.clear()

    relay(bus)

    ((topic, event),) = bus.events
    assert topic == "identity-events"
    assert event.model_dump() == stored
    assert stored["entity_id"] == user.id and stored["entity_version"] == 1
    assert stored["data"]["username"] == "ada" and "password_hash" not in stored["data"]


def test_the_relay_leaves_events_younger_than_the_grace_period(bus: FakeBus) -> None:
    bus.failing.add("user.created")
    product.identity.create_user(CreateUserRequest(username="ada", password=PASSWORD))
    bus.failing.clear()

    assert outbox.Outbox(bus).relay(grace_s=60) == 0  # its writer may still be publishing it
    assert len(staged()) == 1
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    assert outbox.Outbox(bus).relay(grace_s=60, now=later) == 1
    assert staged() == []


def test_a_change_that_fails_stages_no_event(bus: FakeBus, http: Any) -> None:
    assert request(http, "POST", "/auth/register", {"username": "ada", "password": PASSWORD}).status_code == 201
    bus.events.clear()

    assert_error(request(http, "POST", "/auth/register", {"username": "ADA", "password": PASSWORD}), 409, "conflict")

    assert staged() == [] and bus.events == []


def test_a_delivered_event_leaves_nothing_in_the_outbox(bus: FakeBus, http: Any) -> None:
    admin_token = sign_in(http, "root") if admin() else ""
    user_id = request(http, "POST", "/users", {"username": "ada", "password": PASSWORD}, admin_token).json_body["id"]
    assert request(http, "PUT", f"/users/{user_id}", {"role": "admin"}, admin_token).status_code == 200
    assert request(http, "DELETE", f"/users/{user_id}", token=admin_token).status_code == 204

    assert bus.types() == ["user.created", "user.created", "user.updated", "user.sessions_revoked", "user.deleted"]
    assert staged() == []


def test_every_change_whose_events_fail_stands_with_its_events_staged_in_order(bus: FakeBus, http: Any) -> None:
    admin()
    admin_token = sign_in(http, "root")
    user_id = request(http, "POST", "/users", {"username": "ada", "password": PASSWORD},
                      admin_token).json_body["id"]
    ada_token = sign_in(http, "ada")
    bus.failing.update({"user.updated", "user.sessions_revoked", "user.deleted"})

    assert request(http, "PUT", "/auth/me", {"name": "Ada"}, ada_token).status_code == 200
    assert request(http, "POST", "/auth/logout", token=ada_token).status_code == 204
    assert request(http, "PUT", f"/users/{user_id}", {"role": "admin"}, admin_token).status_code == 200
    assert repository.DynamoUsers().admin_count() == 2
    assert request(http, "DELETE", f"/users/{user_id}", token=admin_token).status_code == 204
    assert user_id not in stored_users() and repository.DynamoUsers().admin_count() == 1

    expected = ["user.updated", "user.sessions_revoked", "user.updated", "user.sessions_revoked", "user.deleted"]
    assert [kind for _, kind, _ in staged()] == expected
    bus.failing.clear()
    bus.events.clear()
    assert relay(bus) == 5
    assert bus.types() == expected
    assert [event.entity_version for _, event in bus.events] == [2, 2, 3, 3, 4]


# --- the last admin ------------------------------------------------------------------------


def test_the_last_admin_can_be_neither_deleted_nor_demoted(bus: FakeBus, http: Any) -> None:
    root = admin()
    token = sign_in(http, "root")

    assert_error(request(http, "DELETE", f"/users/{root}", token=token), 409, "conflict")
    assert_error(request(http, "PUT", f"/users/{root}", {"role": "client"}, token), 409, "conflict")

    assert repository.DynamoUsers().admin_count() == 1
    assert stored_users()[root]["role"] == "admin"
    assert request(http, "GET", "/users", token=token).status_code == 200


def test_with_a_second_admin_either_may_go_but_never_both(bus: FakeBus, http: Any) -> None:
    root = admin()
    token = sign_in(http, "root")
    second = request(http, "POST", "/users", {"username": "second", "password": PASSWORD, "role": "admin"},
                     token).json_body["id"]

    assert request(http, "DELETE", f"/users/{second}", token=token).status_code == 204
    assert_error(request(http, "DELETE", f"/users/{root}", token=token), 409, "conflict")

    second = request(http, "POST", "/users", {"username": "second", "password": PASSWORD, "role": "admin"},
                     token).json_body["id"]
    demoted = request(http, "PUT", f"/users/{root}", {"role": "client"}, token)  # demoting oneself
    assert demoted.status_code == 200 and demoted.json_body["role"] == "client"
    # at once: the admin session ends with the role; signed in again, the user is a client
    assert_error(request(http, "GET", "/users", token=token), 401, "unauthorized")
    assert_error(request(http, "GET", "/users", token=sign_in(http, "root")), 403, "forbidden")
    second_token = sign_in(http, "second")
    assert_error(request(http, "PUT", f"/users/{second}", {"role": "client"}, second_token), 409, "conflict")
    assert_error(request(http, "DELETE", f"/users/{second}", token=second_token), 409, "conflict")
    assert repository.DynamoUsers().admin_count() == 1
    assert [u["username"] for u in stored_users().values() if u["role"] == "admin"] == ["second"]


def test_the_admin_counter_is_not_listed_as_a_user(bus: FakeBus, http: Any) -> None:
    root = admin()
    token = sign_in(http, "root")
    ids = {root} | {request(http, "POST", "/auth/register", {"username": f"user{i}", "password": PASSWORD})
                    .json_body["user"]["id"] for i in range(4)}
    listed: list[str] = []
    cursor = None
    for _ in range(20):
        page = request(http, "GET", "/users?limit=2" + (f"&cursor={cursor}" if cursor else ""), token=token).json_body
        assert len(page["items"]) <= 2
        listed.extend(user["id"] for user in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(listed) == sorted(ids)


def test_the_user_list_is_by_username_from_an_index_and_users_kept_before_are_listed(bus: FakeBus, http: Any) -> None:
    admin()
    token = sign_in(http, "root")
    for name in ("Zed", "amy", "Bob", "abe"):
        request(http, "POST", "/auth/register", {"username": name, "password": PASSWORD})
    repository.UserItem("old-1", username="Aaron", username_key="aaron", role="client", password_hash="x",
                        created_at="2026-01-01").save()  # as an earlier version kept it: not listed

    def usernames(query: str) -> list[str]:
        return [u["username"] for u in request(http, "GET", f"/users?limit=50{query}", token=token).json_body["items"]]

    with counted_calls() as operations:
        assert usernames("") == ["abe", "amy", "Bob", "root", "Zed"]
        assert usernames("&q=A") == ["abe", "amy"]
    assert operations["Query"] and "Scan" not in operations
    assert repository.backfill_listing() == 1 and repository.backfill_listing() == 0
    assert usernames("&q=a") == ["Aaron", "abe", "amy"]


# --- the username claim --------------------------------------------------------------------


def test_a_second_create_of_a_name_in_any_case_is_a_conflict(bus: FakeBus) -> None:
    service = IdentityService(publisher=bus)
    first = service.create_user(CreateUserRequest(username="Ada", password=PASSWORD))
    for name in ("Ada", "ada", "ADA"):
        with pytest.raises(errors.ConflictError) as conflict:
            service.create_user(CreateUserRequest(username=name, password=PASSWORD))
        assert [d.field for d in conflict.value.details] == ["username"]
    assert list(stored_users()) == [first.id]
    assert stored_claims() == {"ada": first.id}


def test_a_create_racing_a_claim_made_meanwhile_writes_no_profile(bus: FakeBus) -> None:
    # As if another registration had claimed the name between any look-up and this write:
    # only the conditional write in the transaction can notice.
    repository.UsernameClaim("ada", user_id="someone-else").save()
    with pytest.raises(errors.ConflictError):
        IdentityService(publisher=bus).create_user(CreateUserRequest(username="Ada", password=PASSWORD))
    assert stored_users() == {}
    assert stored_claims() == {"ada": "someone-else"}
    assert bus.events == []


def test_registrations_from_one_address_are_limited_per_hour(
        bus: FakeBus, http: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMS_REGISTER_MAX_PER_SOURCE_HOUR", "3")
    get_settings.cache_clear()
    answers = [request(http, "POST", "/auth/register", {"username": f"many{i}", "password": PASSWORD}).status_code
               for i in range(4)]
    assert answers == [201, 201, 201, 429]
    refused = request(http, "POST", "/auth/register", {"username": "many9", "password": PASSWORD})
    assert_error(refused, 429, "too_many_requests")
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert "many9" not in {u["username"] for u in stored_users().values()}
