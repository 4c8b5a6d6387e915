"""Shared fixtures: one running product runtime for every test that talks to it over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from tests.accounts import Account, new_admin
from tests.harness import FAST_HASHING, RuntimeProcess

__all__ = ["FAST_HASHING"]


@pytest.fixture(scope="session")
def ems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """The product app under the local runtime, with short queue timeouts and no frontend."""
    process = RuntimeProcess(
        tmp_path_factory.mktemp("ems"),
        extra_args=[
            "--visibility-timeout", "1",
            "--max-receive-count", "3",
            "--log-format", "json",
            "--frontend-dir", str(tmp_path_factory.mktemp("no-frontend")),
        ],
        env=FAST_HASHING,
    ).start()
    yield process
    assert process.stop() == 0, process.output


@pytest.fixture(scope="session")
def admin(ems: RuntimeProcess) -> Account:
    """A signed-in admin of the `ems` stage, made with the project's create-admin command once.

    Tests must not log it out, delete it or change its password.
    """
    return new_admin(ems)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto server of the module's own on a free loopback port (no runtime around it)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
