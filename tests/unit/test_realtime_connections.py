"""The registry of open connections, in-process against a faked DynamoDB (tables from the template).

Given connections registered for clients and admins, the sockets of many users must be found
with one BatchGetItem per hundred users and the admins' with one read, never a query per
user or a scan; forgotten and expired connections must not be found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import boto3
import pytest

from chalicelib import names
from chalicelib.realtime import connections
from tests.aws_calls import counted_calls
from tests.faked_stage import REGION, faked_stage


@pytest.fixture
def calls() -> Iterator[Counter[str]]:
    """A faked stage; yields the DynamoDB operations the registry made, by name."""
    with faked_stage(), counted_calls() as counted:
        yield counted


def test_the_sockets_of_many_users_are_found_with_one_request_per_hundred(calls: Counter[str]) -> None:
    # Given 250 clients with a socket each, one of them with two
    for i in range(250):
        connections.register(f"conn-{i}", f"user-{i}", "client", now=1000.0)
    connections.register("conn-extra", "user-7", "client", now=1000.0)
    calls.clear()
    # When the sockets of all of them (and of someone with none) are looked up
    found = connections.of_users([f"user-{i}" for i in range(250)] + ["nobody"], now=1001.0)
    # Then each user has its own, found with three BatchGetItems and nothing else
    assert dict(calls) == {"BatchGetItem": 3}
    assert found["nobody"] == [] and len(found) == 251
    assert sorted(c.connection_id for c in found["user-7"]) == ["conn-7", "conn-extra"]
    assert all(c.user_id == "user-7" and c.role == "client" for c in found["user-7"])


def test_admins_sockets_are_found_by_one_key_and_forgotten_ones_are_gone(calls: Counter[str]) -> None:
    connections.register("a1", "admin-1", "admin", now=1000.0)
    connections.register("a2", "admin-2", "admin", now=1000.0)
    connections.register("c1", "client-1", "client", now=1000.0)
    calls.clear()
    assert sorted(c.connection_id for c in connections.of_admins(now=1001.0)) == ["a1", "a2"]
    assert dict(calls) == {"BatchGetItem": 1}
    connections.forget("a1")
    connections.forget("unknown")  # nothing to do, no error
    assert [c.connection_id for c in connections.of_admins(now=1001.0)] == ["a2"]
    assert connections.of_user("admin-1", now=1001.0) == []
    assert connections.get("a1", now=1001.0) is None and connections.get("a2", now=1001.0) is not None


def test_expired_connections_are_skipped_and_dropped(calls: Counter[str]) -> None:
    connections.register("old", "u", "client", now=1000.0)
    connections.register("new", "u", "client", now=1000.0 + connections.MAX_CONNECTION_S)
    later = 1000.0 + connections.MAX_CONNECTION_S + 1
    assert [c.connection_id for c in connections.of_user("u", now=later)] == ["new"]
    assert connections.get("old", now=later) is None
    # the stale entry was removed from the user's presence item
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=names.resource_name("presence"), Key={"user_id": {"S": "u"}})["Item"]
    assert sorted(item["conns"]["M"]) == ["new"]
