"""Shared fixtures: one running product runtime for every test that talks to it over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import RuntimeProcess

# argon2id at its production size costs 64 MiB and ~0.1 s per hash; tests use a light one.
FAST_HASHING = {"EMS_ARGON2_MEMORY_KIB": "1024", "EMS_ARGON2_TIME_COST": "1", "EMS_ARGON2_PARALLELISM": "1"}


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
