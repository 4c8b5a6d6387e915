"""The deploy rehearsal's stack: packaged, deployed to a local endpoint with IAM enforced, torn down after.

One stack for the whole rehearsal (`make rehearse`): `infra.rehearse` does every step a deploy
does, and a failure of any of them fails the rehearsal, as a failure of a test or of the teardown does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra import rehearse


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rehearse.Deployment]:
    work_dir = tmp_path_factory.mktemp("rehearsal")
    endpoint = rehearse.new_endpoint(work_dir)
    endpoint.start()
    try:
        deployed = rehearse.deploy(endpoint, work_dir)
        yield deployed
        rehearse.delete_stack(endpoint)
        print(f"rehearsal timings (s): {deployed.timings}")
    finally:
        endpoint.stop()
