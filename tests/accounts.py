"""Accounts for tests that talk to a running runtime: the first admin, clients, sign-in."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.harness import FAST_HASHING, PROJECT_DIR, RuntimeProcess

PASSWORD = "correct horse 1"


@dataclass(frozen=True)
class Account:
    """A signed-in user as a test sees it."""

    id: str
    username: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def unique_name(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def runtime_env(runtime: RuntimeProcess) -> dict[str, str]:
    """The environment the runtime gives the app, for a command run beside it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMS_", "AWS_"))}
    env.update(FAST_HASHING)
    env.update({
        "AWS_ENDPOINT_URL": runtime.endpoint_url, "EMS_STAGE": runtime.stage, "EMS_DATA_DIR": str(runtime.data_dir),
        "AWS_DEFAULT_REGION": "us-east-1", **runtime.aws_env(),
    })
    return env


def create_admin(runtime: RuntimeProcess, username: str, password: str = PASSWORD) -> str:
    """The first admin of a stage, made with the project's command for it; returns its id."""
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.identity", "create-admin", "--username", username, "--password-stdin"],
        input=password + "\n", cwd=PROJECT_DIR, env=runtime_env(runtime), capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def sign_in(runtime: RuntimeProcess, username: str, password: str = PASSWORD) -> Account:
    response = requests.post(f"{runtime.rest_url}/auth/login", json={"username": username, "password": password},
                             timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    return Account(body["user"]["id"], username, password, body["access_token"])


def new_client(runtime: RuntimeProcess, prefix: str = "client") -> Account:
    username = unique_name(prefix)
    response = requests.post(f"{runtime.rest_url}/auth/register", json={"username": username, "password": PASSWORD},
                             timeout=30)
    assert response.status_code == 201, response.text
    return sign_in(runtime, username)


def new_admin(runtime: RuntimeProcess) -> Account:
    username = unique_name("admin")
    create_admin(runtime, username)
    return sign_in(runtime, username)


def api(runtime: RuntimeProcess, method: str, path: str, account: Account | None = None, **kwargs: Any
        ) -> requests.Response:
    headers = dict(kwargs.pop("headers", {}) or {})
    if account is not None:
        headers.update(account.headers)
    return requests.request(method, f"{runtime.rest_url}{path}", headers=headers, timeout=30, **kwargs)


def assert_error(response: requests.Response, status: int, code: str, fields: set[str] | None = None) -> dict:
    """The response is the contract's error body with this status and code (and these detail fields)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"], body
    assert set(error) <= {"code", "message", "details"}, body
    if fields is not None:
        named = {detail["field"] for detail in error.get("details", [])}
        assert fields <= named, f"expected details for {fields}, got {body}"
    return error


ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found"}  # the contract's code of each refusal


def caller_matrix(routes: Mapping[str, tuple[Any, Sequence[int]]], callers: Sequence[str]) -> list[Any]:
    """One test case a route and kind of caller, with the status the contract gives that caller."""
    return [pytest.param(route, caller, statuses[i], id=f"{route} as {caller} -> {statuses[i]}")
            for route, (_, statuses) in routes.items() for i, caller in enumerate(callers)]
