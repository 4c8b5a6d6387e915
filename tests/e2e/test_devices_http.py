"""Devices over real HTTP: who may call what, shared ownership, input checking, API keys, deletion.

Given the product app under the local runtime (`ems`), requests go in through its REST edge and
the contract's statuses and error bodies come out. Usernames and device ids carry a random
suffix because the runtime is shared by the whole test session.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.accounts import ERROR_CODES, Account, assert_error, caller_matrix, new_client
from tests.harness import RuntimeProcess

TIMEOUT_S = 30
DEVICE_FIELDS = {"id", "name", "description", "address", "max_hourly_kwh", "timezone", "tariff_per_kwh",
                 "currency", "tariffs", "serial", "owner_ids", "created_at", "reading_kind", "register_max_kwh"}


# --- helpers ------------------------------------------------------------------------------


def call(ems: RuntimeProcess, method: str, path: str, *, token: str | None = None, json_body: Any = None,
         data: str | bytes | None = None, params: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> requests.Response:
    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    return requests.request(method, f"{ems.rest_url}{path}", json=json_body, data=data, params=params,
                            headers=all_headers, timeout=TIMEOUT_S)


def new_device_id() -> str:
    return f"meter-{uuid.uuid4().hex[:12]}"


def create_device(ems: RuntimeProcess, admin: Account, **fields: Any) -> dict[str, Any]:
    body = {"id": new_device_id(), "name": "Kitchen meter", "max_hourly_kwh": 2.5, **fields}
    response = call(ems, "POST", "/devices", token=admin.token, json_body=body)
    assert response.status_code == 201, response.text
    return response.json()


def get_device(ems: RuntimeProcess, account: Account, device_id: str) -> requests.Response:
    return call(ems, "GET", f"/devices/{device_id}", token=account.token)


def listed_ids(ems: RuntimeProcess, account: Account, path: str = "/devices") -> set[str]:
    """Every device id a collection shows this caller, following `next_cursor` to the end."""
    ids: set[str] = set()
    cursor: str | None = None
    for _ in range(1000):
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        response = call(ems, "GET", path, token=account.token, params=params if path == "/devices" else None)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}, page
        ids.update(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("the collection never ended")


# --- who may call what --------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    owner: Account
    other: Account
    admin: Account
    device_id: str
    key_id: str


@pytest.fixture(scope="module")
def clients(ems: RuntimeProcess) -> tuple[Account, Account]:
    """An owner-to-be and another client, shared by this module's route matrix."""
    return new_client(ems, "owner"), new_client(ems, "other")


def make_scene(ems: RuntimeProcess, admin: Account, clients: tuple[Account, Account]) -> Scene:
    """A new device owned by `owner` (not by `other`), with one API key."""
    owner, other = clients
    device = create_device(ems, admin, owner_ids=[owner.id])
    key = call(ems, "POST", f"/devices/{device['id']}/api-keys", token=admin.token)
    assert key.status_code == 201, key.text
    return Scene(owner, other, admin, device["id"], key.json()["key_id"])


@pytest.fixture(scope="module")
def shared_scene(ems: RuntimeProcess, admin: Account, clients: tuple[Account, Account]) -> Scene:
    """One scene for the matrix's calls that leave ownership, keys and the device as they are."""
    return make_scene(ems, admin, clients)


@pytest.fixture
def scene(ems: RuntimeProcess, admin: Account, clients: tuple[Account, Account]) -> Scene:
    return make_scene(ems, admin, clients)


CALLERS = ("anonymous", "owner", "other", "admin")
Request = tuple[str, str, Any]
ROUTES: dict[str, tuple[Callable[[Scene], Request], tuple[int, int, int, int]]] = {
    # route: (request, statuses for anonymous, owner client, other client, admin)
    "GET /devices": (lambda s: ("GET", "/devices", None), (401, 200, 200, 200)),
    "POST /devices": (lambda s: ("POST", "/devices", {"name": "Hall meter", "max_hourly_kwh": 1.5}),
                      (401, 403, 403, 201)),
    "GET /devices/{id}": (lambda s: ("GET", f"/devices/{s.device_id}", None), (401, 200, 404, 200)),
    "PUT /devices/{id}": (lambda s: ("PUT", f"/devices/{s.device_id}", {"max_hourly_kwh": 3.0}),
                          (401, 403, 403, 200)),
    "DELETE /devices/{id}": (lambda s: ("DELETE", f"/devices/{s.device_id}", None), (401, 403, 403, 204)),
    "PUT /devices/{id}/owners/{user_id}": (
        lambda s: ("PUT", f"/devices/{s.device_id}/owners/{s.other.id}", None), (401, 403, 403, 200)),
    "DELETE /devices/{id}/owners/{user_id}": (
        lambda s: ("DELETE", f"/devices/{s.device_id}/owners/{s.owner.id}", None), (401, 403, 403, 200)),
    "GET /devices/{id}/api-keys": (lambda s: ("GET", f"/devices/{s.device_id}/api-keys", None),
                                   (401, 403, 403, 200)),
    "POST /devices/{id}/api-keys": (lambda s: ("POST", f"/devices/{s.device_id}/api-keys", None),
                                    (401, 403, 403, 201)),
    "DELETE /devices/{id}/api-keys/{key_id}": (
        lambda s: ("DELETE", f"/devices/{s.device_id}/api-keys/{s.key_id}", None), (401, 403, 403, 204)),
    "GET /users/{id}/devices": (lambda s: ("GET", f"/users/{s.owner.id}/devices", None), (401, 200, 404, 200)),
}
# An admin's call to these changes what the other cases rely on, so it gets a scene of its own.
CHANGES_THE_SCENE = {"DELETE /devices/{id}", "PUT /devices/{id}/owners/{user_id}",
                     "DELETE /devices/{id}/owners/{user_id}", "DELETE /devices/{id}/api-keys/{key_id}"}
MATRIX = caller_matrix(ROUTES, CALLERS)


@pytest.mark.parametrize(("route", "caller", "status"), MATRIX)
def test_each_device_route_answers_each_kind_of_caller_as_the_contract_says(
    ems: RuntimeProcess, admin: Account, clients: tuple[Account, Account], shared_scene: Scene, route: str,
    caller: str, status: int
) -> None:
    changes = caller == "admin" and route in CHANGES_THE_SCENE
    scene = make_scene(ems, admin, clients) if changes else shared_scene
    account = {"anonymous": None, "owner": scene.owner, "other": scene.other, "admin": scene.admin}[caller]
    method, path, body = ROUTES[route][0](scene)

    response = call(ems, method, path, token=account.token if account else None, json_body=body)

    if status >= 400:
        assert_error(response, status, ERROR_CODES[status])
    elif status == 204:
        assert response.status_code == 204, response.text
        assert response.content == b""
    else:
        assert response.status_code == status, response.text
        assert isinstance(response.json(), dict)


def test_a_refused_call_changes_nothing(ems: RuntimeProcess, scene: Scene) -> None:
    before = get_device(ems, scene.admin, scene.device_id).json()

    for caller in (None, scene.owner, scene.other):
        token = caller.token if caller else None
        call(ems, "PUT", f"/devices/{scene.device_id}", token=token, json_body={"max_hourly_kwh": 99.0})
        call(ems, "PUT", f"/devices/{scene.device_id}/owners/{scene.other.id}", token=token)
        call(ems, "DELETE", f"/devices/{scene.device_id}/owners/{scene.owner.id}", token=token)
        call(ems, "DELETE", f"/devices/{scene.device_id}/api-keys/{scene.key_id}", token=token)
        call(ems, "DELETE", f"/devices/{scene.device_id}", token=token)

    assert get_device(ems, scene.admin, scene.device_id).json() == before
    keys = call(ems, "GET", f"/devices/{scene.device_id}/api-keys", token=scene.admin.token).json()["items"]
    assert [k["key_id"] for k in keys] == [scene.key_id]


def test_a_client_learns_nothing_about_another_clients_device_beyond_an_unknown_id(
    ems: RuntimeProcess, shared_scene: Scene
) -> None:
    scene = shared_scene
    another = get_device(ems, scene.other, scene.device_id)
    unknown = get_device(ems, scene.other, new_device_id())

    assert_error(another, 404, "not_found")
    assert another.json() == unknown.json()
    assert scene.device_id not in listed_ids(ems, scene.other)


def test_a_client_learns_nothing_about_another_users_devices_beyond_an_unknown_user(
    ems: RuntimeProcess, shared_scene: Scene
) -> None:
    scene = shared_scene
    another = call(ems, "GET", f"/users/{scene.owner.id}/devices", token=scene.other.token)
    unknown = call(ems, "GET", f"/users/{uuid.uuid4()}/devices", token=scene.other.token)

    assert_error(another, 404, "not_found")
    assert another.json() == unknown.json()


# --- shared ownership ---------------------------------------------------------------------


def test_a_device_shared_by_two_owners_is_seen_by_both_and_by_admins_only(
    ems: RuntimeProcess, admin: Account
) -> None:
    alice, bob, carol = new_client(ems, "alice"), new_client(ems, "bob"), new_client(ems, "carol")
    shared = create_device(ems, admin, owner_ids=[alice.id, bob.id])
    alices_own = create_device(ems, admin, owner_ids=[alice.id])

    assert shared["owner_ids"] == sorted([alice.id, bob.id])
    for owner in (alice, bob):
        assert shared["id"] in listed_ids(ems, owner)
        assert shared["id"] in listed_ids(ems, owner, f"/users/{owner.id}/devices")
        seen = get_device(ems, owner, shared["id"])
        assert seen.status_code == 200, seen.text
        assert seen.json() == shared
    assert listed_ids(ems, alice) == {shared["id"], alices_own["id"]}
    assert listed_ids(ems, bob) == {shared["id"]}
    assert listed_ids(ems, carol) == set()
    assert_error(get_device(ems, carol, shared["id"]), 404, "not_found")
    assert {shared["id"], alices_own["id"]} <= listed_ids(ems, admin)
    assert listed_ids(ems, admin, f"/users/{bob.id}/devices") == {shared["id"]}
    assert get_device(ems, admin, shared["id"]).json() == shared


def test_the_admin_list_pages_with_a_cursor_and_ends_with_null(ems: RuntimeProcess, admin: Account) -> None:
    created = {create_device(ems, admin)["id"] for _ in range(3)}
    # About three pages, however many devices the session has made by now.
    limit = max(1, len(listed_ids(ems, admin)) // 3)

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        page = call(ems, "GET", "/devices", token=admin.token, params=params).json()
        assert len(page["items"]) <= limit
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert cursor is None, "the list did not end in ten pages"
    assert created <= set(seen)
    assert len(seen) == len(set(seen))  # no device on two pages


def test_adding_an_owner_twice_answers_the_same_device_both_times(ems: RuntimeProcess, admin: Account) -> None:
    owner, newcomer = new_client(ems, "owner"), new_client(ems, "newcomer")
    device = create_device(ems, admin, owner_ids=[owner.id])
    path = f"/devices/{device['id']}/owners/{newcomer.id}"

    first = call(ems, "PUT", path, token=admin.token)
    second = call(ems, "PUT", path, token=admin.token)

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json() == {**device, "owner_ids": sorted([owner.id, newcomer.id])}
    assert device["id"] in listed_ids(ems, newcomer)


def test_removing_an_owner_twice_answers_the_same_device_both_times(ems: RuntimeProcess, admin: Account) -> None:
    owner, leaving = new_client(ems, "owner"), new_client(ems, "leaving")
    device = create_device(ems, admin, owner_ids=[owner.id, leaving.id])
    path = f"/devices/{device['id']}/owners/{leaving.id}"

    first = call(ems, "DELETE", path, token=admin.token)
    second = call(ems, "DELETE", path, token=admin.token)

    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() == second.json() == {**device, "owner_ids": [owner.id]}
    assert_error(get_device(ems, leaving, device["id"]), 404, "not_found")
    assert device["id"] not in listed_ids(ems, leaving)


def test_removing_a_user_who_is_not_an_owner_answers_the_device_unchanged(
    ems: RuntimeProcess, admin: Account
) -> None:
    owner, bystander = new_client(ems, "owner"), new_client(ems, "bystander")
    device = create_device(ems, admin, owner_ids=[owner.id])

    for user_id in (bystander.id, str(uuid.uuid4())):
        response = call(ems, "DELETE", f"/devices/{device['id']}/owners/{user_id}", token=admin.token)
        assert response.status_code == 200, response.text
        assert response.json() == device

    assert get_device(ems, admin, device["id"]).json() == device


def test_an_owner_must_be_an_existing_user(ems: RuntimeProcess, admin: Account) -> None:
    owner = new_client(ems, "owner")
    ghost = str(uuid.uuid4())
    device_id = new_device_id()

    created = call(ems, "POST", "/devices", token=admin.token,
                   json_body={"id": device_id, "name": "Meter", "max_hourly_kwh": 1, "owner_ids": [owner.id, ghost]})
    error = assert_error(created, 422, "validation_error", {"owner_ids"})
    assert any(ghost in detail["message"] for detail in error["details"]), error
    assert_error(get_device(ems, admin, device_id), 404, "not_found")  # nothing was stored

    device = create_device(ems, admin, owner_ids=[owner.id])
    added = call(ems, "PUT", f"/devices/{device['id']}/owners/{ghost}", token=admin.token)
    assert_error(added, 404, "not_found")
    assert get_device(ems, admin, device["id"]).json() == device


def test_a_user_registered_a_moment_ago_can_be_made_an_owner_at_once(ems: RuntimeProcess, admin: Account) -> None:
    first, second = new_client(ems, "fresh"), new_client(ems, "fresh")

    created = create_device(ems, admin, owner_ids=[first.id])
    added = call(ems, "PUT", f"/devices/{created['id']}/owners/{second.id}", token=admin.token)

    assert created["owner_ids"] == [first.id]
    assert added.status_code == 200, added.text
    assert added.json()["owner_ids"] == sorted([first.id, second.id])
    assert get_device(ems, second, created["id"]).status_code == 200


def test_owner_routes_on_an_unknown_device_answer_404(ems: RuntimeProcess, admin: Account) -> None:
    user = new_client(ems)
    for method in ("PUT", "DELETE"):
        response = call(ems, method, f"/devices/{new_device_id()}/owners/{user.id}", token=admin.token)
        assert_error(response, 404, "not_found")


# --- creating and changing ----------------------------------------------------------------


def test_a_device_is_created_with_every_field_and_read_back_the_same(ems: RuntimeProcess, admin: Account) -> None:
    owner = new_client(ems)
    device_id = new_device_id()
    response = call(ems, "POST", "/devices", token=admin.token, json_body={
        "id": device_id, "name": "  Boiler room  ", "description": "Basement", "address": "1 Main St",
        "max_hourly_kwh": 7.5, "timezone": "Europe/Bucharest", "tariff_per_kwh": 0.85, "currency": "ron",
        "owner_ids": [owner.id, owner.id],
    })

    assert response.status_code == 201, response.text
    device = response.json()
    assert set(device) == DEVICE_FIELDS
    assert {k: v for k, v in device.items() if k != "created_at"} == {
        "id": device_id, "name": "Boiler room", "description": "Basement", "address": "1 Main St",
        "max_hourly_kwh": 7.5, "timezone": "Europe/Bucharest", "tariff_per_kwh": 0.85, "currency": "RON",
        "tariffs": [], "serial": None, "owner_ids": [owner.id], "reading_kind": "interval", "register_max_kwh": None,
    }
    assert get_device(ems, owner, device_id).json() == device


def test_a_device_without_an_id_gets_a_uuid(ems: RuntimeProcess, admin: Account) -> None:
    response = call(ems, "POST", "/devices", token=admin.token, json_body={"name": "Meter", "max_hourly_kwh": 1})

    assert response.status_code == 201, response.text
    assert str(uuid.UUID(response.json()["id"])) == response.json()["id"]


def test_the_timezone_defaults_to_utc_when_absent(ems: RuntimeProcess, admin: Account) -> None:
    device = create_device(ems, admin)

    assert device["timezone"] == "UTC"
    assert (device["tariff_per_kwh"], device["currency"], device["owner_ids"]) == (None, None, [])


def test_an_update_changes_only_the_given_fields(ems: RuntimeProcess, admin: Account) -> None:
    device = create_device(ems, admin, description="Old", tariff_per_kwh=0.5, currency="EUR")

    response = call(ems, "PUT", f"/devices/{device['id']}", token=admin.token,
                    json_body={"max_hourly_kwh": 4.25, "timezone": "America/New_York", "tariff_per_kwh": None})

    assert response.status_code == 200, response.text
    expected = {**device, "max_hourly_kwh": 4.25, "timezone": "America/New_York", "tariff_per_kwh": None}
    assert response.json() == expected
    assert get_device(ems, admin, device["id"]).json() == expected
    unchanged = call(ems, "PUT", f"/devices/{device['id']}", token=admin.token, json_body={})
    assert unchanged.status_code == 200 and unchanged.json() == expected


def test_an_admin_given_id_that_exists_gets_409_and_leaves_the_device_alone(
    ems: RuntimeProcess, admin: Account
) -> None:
    device = create_device(ems, admin)

    again = call(ems, "POST", "/devices", token=admin.token,
                 json_body={"id": device["id"], "name": "Impostor", "max_hourly_kwh": 9})

    assert_error(again, 409, "conflict", {"id"})
    assert get_device(ems, admin, device["id"]).json() == device


def test_an_unknown_device_answers_404_on_every_device_route(ems: RuntimeProcess, admin: Account) -> None:
    device_id = new_device_id()
    for method, path, body in [
        ("GET", f"/devices/{device_id}", None),
        ("PUT", f"/devices/{device_id}", {"name": "X"}),
        ("DELETE", f"/devices/{device_id}", None),
        ("GET", f"/devices/{device_id}/api-keys", None),
        ("POST", f"/devices/{device_id}/api-keys", None),
        ("DELETE", f"/devices/{device_id}/api-keys/0123456789abcdef", None),
    ]:
        assert_error(call(ems, method, path, token=admin.token, json_body=body), 404, "not_found")


# --- bad input ----------------------------------------------------------------------------

TEN_KB = "x" * 10 * 1024
BAD_LISTS = {
    "limit 0": "0", "limit negative": "-3", "limit NaN": "NaN", "limit inf": "inf", "limit -inf": "-inf",
    "limit a word": "many", "limit a fraction": "1.5", "limit empty": "", "limit too large": "100000",
}


@pytest.mark.parametrize("limit", list(BAD_LISTS.values()), ids=list(BAD_LISTS))
def test_a_bad_list_limit_gets_422_naming_limit(
    ems: RuntimeProcess, admin: Account, clients: tuple[Account, Account], limit: str
) -> None:
    for account in (admin, clients[0]):
        response = call(ems, "GET", "/devices", token=account.token, params={"limit": limit})
        assert_error(response, 422, "validation_error", {"limit"})


def test_a_bad_cursor_or_unknown_query_parameter_gets_422(ems: RuntimeProcess, admin: Account) -> None:
    for params, field in [({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": "e30="}, "cursor"),
                          ({"colour": "red"}, "colour")]:
        response = call(ems, "GET", "/devices", token=admin.token, params=params)
        assert_error(response, 422, "validation_error", {field})


def test_a_cursor_whose_key_has_the_wrong_shape_gets_422(ems: RuntimeProcess, admin: Account) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps({"id": "meter-1"}).encode()).decode()

    response = call(ems, "GET", "/devices", token=admin.token, params={"cursor": cursor})

    assert_error(response, 422, "validation_error", {"cursor"})


BAD_CREATES: dict[str, tuple[dict[str, Any], str]] = {
    # case: (fields over a valid body, the field the details must name)
    "no name": ({"name": None}, "name"),
    "empty name": ({"name": "   "}, "name"),
    "10 kB name": ({"name": TEN_KB}, "name"),
    "10 kB description": ({"description": TEN_KB}, "description"),
    "name a number": ({"name": 7}, "name"),
    "no limit": ({"max_hourly_kwh": None}, "max_hourly_kwh"),
    "limit 0": ({"max_hourly_kwh": 0}, "max_hourly_kwh"),
    "limit negative": ({"max_hourly_kwh": -1}, "max_hourly_kwh"),
    "limit a word": ({"max_hourly_kwh": "lots"}, "max_hourly_kwh"),
    "limit huge": ({"max_hourly_kwh": 1e300}, "max_hourly_kwh"),
    "unknown timezone": ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    "timezone an offset": ({"timezone": "+02:00"}, "timezone"),
    "empty timezone": ({"timezone": ""}, "timezone"),
    "negative tariff": ({"tariff_per_kwh": -0.1}, "tariff_per_kwh"),
    "currency of 4 letters": ({"currency": "EURO"}, "currency"),
    "id with a space": ({"id": "meter 1"}, "id"),
    "id with a slash": ({"id": "a/b"}, "id"),
    "id of 65 characters": ({"id": "m" * 65}, "id"),
    "empty id": ({"id": ""}, "id"),
    "id a number": ({"id": 12}, "id"),
    "unknown owner": ({"owner_ids": ["no-such-user"]}, "owner_ids"),
    "owner_ids not a list": ({"owner_ids": "someone"}, "owner_ids"),
    "extra field": ({"colour": "red"}, "colour"),
    "unknown reading_kind": ({"reading_kind": "cumulative"}, "reading_kind"),
    "reading_kind a number": ({"reading_kind": 1}, "reading_kind"),
    "register_max_kwh 0": ({"reading_kind": "register", "register_max_kwh": 0}, "register_max_kwh"),
    "register_max_kwh negative": ({"reading_kind": "register", "register_max_kwh": -5}, "register_max_kwh"),
    "register_max_kwh a text": ({"reading_kind": "register", "register_max_kwh": "lots"}, "register_max_kwh"),
    "register_max_kwh on an interval device": ({"register_max_kwh": 99999}, "register_max_kwh"),
}


def _without_nones(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize("case", list(BAD_CREATES))
def test_a_bad_device_gets_422_naming_the_field_and_is_not_stored(
    ems: RuntimeProcess, admin: Account, case: str
) -> None:
    changes, field = BAD_CREATES[case]
    device_id = new_device_id()
    body = _without_nones({"id": device_id, "name": "Meter", "max_hourly_kwh": 2.0, **changes})

    response = call(ems, "POST", "/devices", token=admin.token, json_body=body)

    assert_error(response, 422, "validation_error", {field})
    assert_error(get_device(ems, admin, device_id), 404, "not_found")


BAD_NUMBERS = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}


@pytest.mark.parametrize("literal", list(BAD_NUMBERS.values()), ids=list(BAD_NUMBERS))
def test_a_non_finite_limit_gets_422_on_create_and_update(ems: RuntimeProcess, admin: Account, literal: str) -> None:
    device = create_device(ems, admin)

    created = call(ems, "POST", "/devices", token=admin.token,
                   data=f'{{"name": "Meter", "max_hourly_kwh": {literal}}}')
    updated = call(ems, "PUT", f"/devices/{device['id']}", token=admin.token,
                   data=f'{{"max_hourly_kwh": {literal}}}')
    tariff = call(ems, "PUT", f"/devices/{device['id']}", token=admin.token,
                  data=f'{{"tariff_per_kwh": {literal}}}')

    assert_error(created, 422, "validation_error", {"max_hourly_kwh"})
    assert_error(updated, 422, "validation_error", {"max_hourly_kwh"})
    assert_error(tariff, 422, "validation_error", {"tariff_per_kwh"})
    assert get_device(ems, admin, device["id"]).json() == device


BAD_UPDATES: dict[str, tuple[dict[str, Any], str]] = {
    "name null": ({"name": None}, "name"),
    "limit null": ({"max_hourly_kwh": None}, "max_hourly_kwh"),
    "timezone null": ({"timezone": None}, "timezone"),
    "limit 0": ({"max_hourly_kwh": 0}, "max_hourly_kwh"),
    "unknown timezone": ({"timezone": "Europe/Atlantis"}, "timezone"),
    "10 kB name": ({"name": TEN_KB}, "name"),
    "id": ({"id": "another-id"}, "id"),
    "owner_ids": ({"owner_ids": []}, "owner_ids"),
    "extra field": ({"colour": "red"}, "colour"),
    "reading_kind null": ({"reading_kind": None}, "reading_kind"),
    "unknown reading_kind": ({"reading_kind": "delta"}, "reading_kind"),
    "register_max_kwh 0": ({"register_max_kwh": 0}, "register_max_kwh"),
    "register_max_kwh on an interval device": ({"register_max_kwh": 99999}, "register_max_kwh"),
}


def test_a_device_is_interval_unless_made_a_register_one_and_keeps_its_register_maximum(
    ems: RuntimeProcess, admin: Account
) -> None:
    # Given a device created without a reading kind, and one created as a register with a maximum
    plain = create_device(ems, admin)
    body = {"id": new_device_id(), "name": "Register", "max_hourly_kwh": 2.0, "reading_kind": "register",
            "register_max_kwh": 99999.9}
    created = call(ems, "POST", "/devices", token=admin.token, json_body=body)
    assert created.status_code == 201, created.text
    # Then the first reads as interval, the second as a register with its maximum
    assert (plain["reading_kind"], plain["register_max_kwh"]) == ("interval", None)
    stored = get_device(ems, admin, body["id"]).json()
    assert (stored["reading_kind"], stored["register_max_kwh"]) == ("register", 99999.9)
    # When the maximum is removed, then the device stays a register one without it
    updated = call(ems, "PUT", f"/devices/{body['id']}", token=admin.token, json_body={"register_max_kwh": None})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["reading_kind"], updated.json()["register_max_kwh"]) == ("register", None)


@pytest.mark.parametrize("case", list(BAD_UPDATES))
def test_a_bad_update_gets_422_naming_the_field_and_changes_nothing(
    ems: RuntimeProcess, admin: Account, case: str
) -> None:
    body, field = BAD_UPDATES[case]
    device = create_device(ems, admin)

    response = call(ems, "PUT", f"/devices/{device['id']}", token=admin.token, json_body=body)

    assert_error(response, 422, "validation_error", {field})
    assert get_device(ems, admin, device["id"]).json() == device


MALFORMED_JSON = {"unclosed object": b"{not json", "unclosed list": b"[1, 2", "trailing comma": b'{"name": "x",}',
                  "not UTF-8": b"\xff\xfe{}"}


@pytest.mark.parametrize("raw", list(MALFORMED_JSON.values()), ids=list(MALFORMED_JSON))
def test_malformed_json_gets_400_invalid_json(ems: RuntimeProcess, admin: Account, raw: bytes) -> None:
    device = create_device(ems, admin)
    for method, path in [("POST", "/devices"), ("PUT", f"/devices/{device['id']}")]:
        assert_error(call(ems, method, path, token=admin.token, data=raw), 400, "invalid_json")


@pytest.mark.parametrize("body", [None, [], "a device", 42], ids=["no body", "a list", "a string", "a number"])
def test_a_body_that_is_not_an_object_gets_422(ems: RuntimeProcess, admin: Account, body: Any) -> None:
    response = call(ems, "POST", "/devices", token=admin.token, data=json.dumps(body) if body is not None else "")

    assert_error(response, 422, "validation_error")


# --- API keys -----------------------------------------------------------------------------


def test_an_api_key_is_shown_once_listed_without_its_secret_and_revoked_once(
    ems: RuntimeProcess, admin: Account
) -> None:
    device = create_device(ems, admin)
    keys_path = f"/devices/{device['id']}/api-keys"

    created = call(ems, "POST", keys_path, token=admin.token)
    assert created.status_code == 201, created.text
    key = created.json()
    assert set(key) == {"key_id", "api_key"}
    assert key["api_key"].startswith(f"{key['key_id']}.")
    secret = key["api_key"].split(".", 1)[1]

    listed = call(ems, "GET", keys_path, token=admin.token)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [set(item) for item in items] == [{"key_id", "device_id", "created_at"}]
    assert (items[0]["key_id"], items[0]["device_id"]) == (key["key_id"], device["id"])
    assert secret not in listed.text

    reading = {"readings": [{"not": "a reading"}]}
    accepted = call(ems, "POST", "/readings", json_body=reading, headers={"X-Api-Key": key["api_key"]})
    assert accepted.status_code == 202, accepted.text

    revoked = call(ems, "DELETE", f"{keys_path}/{key['key_id']}", token=admin.token)
    assert revoked.status_code == 204 and revoked.content == b""
    assert_error(call(ems, "DELETE", f"{keys_path}/{key['key_id']}", token=admin.token), 404, "not_found")
    assert call(ems, "GET", keys_path, token=admin.token).json()["items"] == []
    refused = call(ems, "POST", "/readings", json_body=reading, headers={"X-Api-Key": key["api_key"]})
    assert_error(refused, 401, "unauthorized")


def test_each_api_key_creation_makes_a_new_key(ems: RuntimeProcess, admin: Account) -> None:
    device = create_device(ems, admin)
    keys_path = f"/devices/{device['id']}/api-keys"

    first = call(ems, "POST", keys_path, token=admin.token).json()
    second = call(ems, "POST", keys_path, token=admin.token).json()

    assert first["key_id"] != second["key_id"] and first["api_key"] != second["api_key"]
    listed = call(ems, "GET", keys_path, token=admin.token).json()["items"]
    assert {item["key_id"] for item in listed} == {first["key_id"], second["key_id"]}


def test_a_key_of_another_device_cannot_be_revoked_through_this_one(ems: RuntimeProcess, admin: Account) -> None:
    mine, theirs = create_device(ems, admin), create_device(ems, admin)
    key = call(ems, "POST", f"/devices/{theirs['id']}/api-keys", token=admin.token).json()

    response = call(ems, "DELETE", f"/devices/{mine['id']}/api-keys/{key['key_id']}", token=admin.token)

    assert_error(response, 404, "not_found")
    unknown = call(ems, "DELETE", f"/devices/{mine['id']}/api-keys/{uuid.uuid4().hex[:16]}", token=admin.token)
    assert response.json() == unknown.json()
    listed = call(ems, "GET", f"/devices/{theirs['id']}/api-keys", token=admin.token).json()["items"]
    assert [item["key_id"] for item in listed] == [key["key_id"]]


# --- deletion -----------------------------------------------------------------------------


def test_a_deleted_device_is_gone_for_admins_and_owners_and_from_every_list(
    ems: RuntimeProcess, admin: Account
) -> None:
    alice, bob = new_client(ems, "alice"), new_client(ems, "bob")
    device = create_device(ems, admin, owner_ids=[alice.id, bob.id])
    kept = create_device(ems, admin, owner_ids=[alice.id])
    key = call(ems, "POST", f"/devices/{device['id']}/api-keys", token=admin.token).json()

    deleted = call(ems, "DELETE", f"/devices/{device['id']}", token=admin.token)

    assert deleted.status_code == 204 and deleted.content == b""
    for account in (admin, alice, bob):
        assert_error(get_device(ems, account, device["id"]), 404, "not_found")
    assert listed_ids(ems, alice) == {kept["id"]}
    assert listed_ids(ems, bob) == set()
    assert listed_ids(ems, admin, f"/users/{alice.id}/devices") == {kept["id"]}
    assert device["id"] not in listed_ids(ems, admin)
    assert_error(call(ems, "DELETE", f"/devices/{device['id']}", token=admin.token), 404, "not_found")
    assert_error(call(ems, "GET", f"/devices/{device['id']}/api-keys", token=admin.token), 404, "not_found")
    refused = call(ems, "POST", "/readings", json_body={"readings": [{}]}, headers={"X-Api-Key": key["api_key"]})
    assert_error(refused, 401, "unauthorized")


def test_a_deleted_devices_id_can_be_used_again(ems: RuntimeProcess, admin: Account) -> None:
    owner = new_client(ems)
    device = create_device(ems, admin, owner_ids=[owner.id], max_hourly_kwh=1.0)
    assert call(ems, "DELETE", f"/devices/{device['id']}", token=admin.token).status_code == 204

    again = call(ems, "POST", "/devices", token=admin.token,
                 json_body={"id": device["id"], "name": "Replacement", "max_hourly_kwh": 3.0})

    assert again.status_code == 201, again.text
    assert again.json()["owner_ids"] == []  # the former owners do not come back with the id
    assert_error(get_device(ems, owner, device["id"]), 404, "not_found")
