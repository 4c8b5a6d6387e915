"""The OpenAPI document served at /api/openapi.json: valid, and in step with the routes the app has."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from openapi_spec_validator import validate

import app as product
from chalicelib.http import Access
from tests.harness import RuntimeProcess

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def document(ems: RuntimeProcess) -> dict[str, Any]:
    response = requests.get(f"{ems.rest_url}/openapi.json", timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(path, method.upper()): operation
            for path, item in document["paths"].items()
            for method, operation in item.items() if method in METHODS}


def test_the_served_document_is_a_valid_openapi_3_document(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": "/api"}]


def test_the_document_describes_exactly_the_routes_the_app_serves(document: dict[str, Any]) -> None:
    served = {(path, method) for path, entries in product.app.routes.items() for method in entries}
    assert set(operations(document)) == served


def test_every_route_that_needs_a_token_says_so_and_public_ones_do_not(document: dict[str, Any]) -> None:
    declared = {(op.path, op.method): op.access for op in product.api.operations}
    for key, operation in operations(document).items():
        needs_token = declared[key] != Access.PUBLIC
        assert ("security" in operation) == needs_token, key
        if needs_token:
            assert operation["security"] == [{"bearer": []}]
            assert "401" in operation["responses"], key
        if declared[key] == Access.ADMIN:
            assert "403" in operation["responses"], key


def test_operation_ids_are_unique_and_every_reference_resolves(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for operation in operations(document).values()]
    assert len(ids) == len(set(ids))
    schemas = document["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


def test_identity_operations_carry_their_contract_statuses_and_bodies(document: dict[str, Any]) -> None:
    ops = operations(document)
    assert "201" in ops[("/auth/register", "POST")]["responses"]
    assert "201" in ops[("/users", "POST")]["responses"]
    assert "204" in ops[("/users/{user_id}", "DELETE")]["responses"]
    assert "204" in ops[("/auth/logout", "POST")]["responses"]
    assert "204" in ops[("/auth/password", "POST")]["responses"]
    assert "429" in ops[("/auth/login", "POST")]["responses"]
    register = ops[("/auth/register", "POST")]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][register.rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"username", "password"}
    assert schema.get("additionalProperties") is False
    assert "password" not in document["components"]["schemas"]["UserOut"]["properties"]
