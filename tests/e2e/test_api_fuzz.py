"""A property-based fuzz of the whole REST API, generated from its own OpenAPI document.

Schemathesis reads the app's OpenAPI document (the one `/api/openapi.json` serves) and, for every operation, sends
generated requests (valid ones and, in its negative phase, invalid ones) as an anonymous caller,
a client and an admin. Whatever it sends, the app must answer without a 5xx, with a status the
document lists for that operation, and a body and content type matching the documented schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

import app as product
from chalicelib import openapi
from tests.accounts import Account, new_admin, new_client
from tests.harness import FAST_HASHING, RuntimeProcess

# What the contract promises for any request, valid or not.
CONTRACT_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """A runtime of the fuzz's own: what it creates and deletes touches no other test."""
    process = RuntimeProcess(
        tmp_path_factory.mktemp("fuzzed"),
        extra_args=["--visibility-timeout", "1", "--rest-rate-limit", "0",
                    "--frontend-dir", str(tmp_path_factory.mktemp("no-frontend"))],
        env=FAST_HASHING,
    ).start()
    yield process
    assert process.stop() == 0, process.output


@pytest.fixture(scope="module")
def callers(fuzzed: RuntimeProcess) -> dict[str, Account | None]:
    return {"anonymous": None, "client": new_client(fuzzed, "fuzz"), "admin": new_admin(fuzzed)}


# The document the app serves at /api/openapi.json, made by the same code in this process (the
# tests are generated when the module is collected, before any runtime runs); the first test
# checks that the running app serves exactly this document.
DOCUMENT = openapi.document(product.api.operations)
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_the_fuzzed_document_is_the_one_the_app_serves(fuzzed: RuntimeProcess) -> None:
    served = requests.get(f"{fuzzed.rest_url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(DOCUMENT))


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def call(case: Any, runtime: RuntimeProcess, caller: Account | None) -> None:
    headers = dict(caller.headers) if caller else {}
    case.call_and_validate(base_url=runtime.rest_url, headers=headers, checks=CONTRACT_CHECKS, timeout=30)


@schema.parametrize()
@FUZZ
def test_an_anonymous_caller_gets_no_5xx_and_only_documented_answers(case: Any, fuzzed: RuntimeProcess) -> None:
    call(case, fuzzed, None)


@schema.parametrize()
@FUZZ
def test_a_client_gets_no_5xx_and_only_documented_answers(
    case: Any, fuzzed: RuntimeProcess, callers: dict[str, Account | None]
) -> None:
    call(case, fuzzed, callers["client"])


@schema.parametrize()
@FUZZ
def test_an_admin_gets_no_5xx_and_only_documented_answers(
    case: Any, fuzzed: RuntimeProcess, callers: dict[str, Account | None]
) -> None:
    call(case, fuzzed, callers["admin"])
