"""Cached AWS clients, created on first use from the settings (never at import).

boto3 sessions are not thread-safe while they create clients, so creation is serialised;
the clients themselves are safe to share between threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore
from botocore.config import Config

from chalicelib.settings import get_settings

# A fixed User-Agent: botocore then skips assembling its standard one (sanitised component by
# component on every call, about a sixth of a call's client-side CPU).
USER_AGENT = f"ems Botocore/{botocore.__version__}"
_lock = threading.Lock()
_session: boto3.session.Session | None = None
_clients: dict[str, Any] = {}


def session() -> boto3.session.Session:
    """The process-wide boto3 session in the configured region."""
    global _session
    with _lock:
        if _session is None:
            _session = boto3.session.Session(region_name=get_settings().region)
        return _session


def client(service: str) -> Any:
    """A client for `service` at the configured endpoint (LocalStack/moto or AWS)."""
    found = _clients.get(service)
    if found is not None:
        return found
    current = session()
    with _lock:
        if service not in _clients:
            _clients[service] = current.client(
                service,
                endpoint_url=get_settings().aws_endpoint_url,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                              max_pool_connections=32, user_agent=USER_AGENT),
            )
        return _clients[service]


def create_client(service: str, **kwargs: Any) -> Any:
    """A client made from the shared session with other options (serialised like the rest)."""
    current = session()
    with _lock:
        return current.client(service, **kwargs)


def batch_get_items(table: str, keys: list[dict[str, Any]], *, consistent: bool = False,
                    projection: str | None = None, attempts: int = 10) -> Iterator[dict[str, Any]]:
    """The items of `table` at these keys (raw DynamoDB JSON), a hundred to a BatchGetItem.

    Keys DynamoDB leaves unprocessed are asked again with a growing pause; a call that still
    leaves some after `attempts` raises, since a missing item must not pass for an absent one.
    """
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {table: {"Keys": keys[start:start + 100], "ConsistentRead": consistent,
                                           **({"ProjectionExpression": projection} if projection else {})}}
        for attempt in range(attempts):
            response = client("dynamodb").batch_get_item(RequestItems=request)
            yield from response.get("Responses", {}).get(table, [])
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(0.05 * (attempt + 1))
        else:
            raise RuntimeError(f"{table} kept some keys unprocessed")


def delete_queried(table: str, key_names: tuple[str, ...], **query: Any) -> int:
    """Delete every item a Query of `table` (or of one of its indexes) finds, 25 to a BatchWriteItem;
    `key_names` are the table's key attributes. The number deleted."""
    dynamodb = client("dynamodb")
    deleted = 0
    for page in dynamodb.get_paginator("query").paginate(TableName=table, **query):
        keys = [{name: item[name] for name in key_names} for item in page.get("Items", [])]
        for start in range(0, len(keys), 25):
            pending: dict[str, Any] = {table: [{"DeleteRequest": {"Key": k}} for k in keys[start:start + 25]]}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        deleted += len(keys)
    return deleted
