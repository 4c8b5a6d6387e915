"""Counting the AWS operations a piece of code makes, through the process's own clients."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib import aws


@contextmanager
def counted_calls(*services: str) -> Iterator[Counter[str]]:
    """The operations made inside the block by this process's clients of `services` (DynamoDB when
    none is named; every model and transaction goes through its one client), by operation name."""
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    clients = [aws.client(service) for service in services or ("dynamodb",)]
    for client in clients:
        client.meta.events.register("before-call.*.*", count)
    try:
        yield calls
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.*.*", count)
