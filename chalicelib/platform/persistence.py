"""The one way the contexts persist: pynamodb models, with what they share here.

Every table has a pynamodb model (an `Item`) in its context's repository, and repositories return
the context's domain objects (never raw DynamoDB JSON, never an API model). Shared here: the
process's one DynamoDB client that every model and transaction goes through, exact decimals, and
deleting what a query finds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import cache, partial
from typing import Any, TypeVar

from pynamodb.attributes import Attribute
from pynamodb.connection import Connection, TableConnection
from pynamodb.constants import NUMBER
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.pagination import ResultIterator
from pynamodb.transactions import TransactWrite

from chalicelib import aws
from chalicelib.platform.conditions import applied
from chalicelib.settings import get_settings

ModelT = TypeVar("ModelT", bound=Model)


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB number read and written as an exact Decimal (pynamodb's NumberAttribute is a float)."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        return str(value)

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


def _on_shared_client(connection: Connection) -> Connection:
    """`connection` sending through the process's DynamoDB client (`aws.client`). pynamodb would make a
    client for each model, each with a session of its own that loads the service's model again (~0.1 s
    of CPU a client, in every new process); the shared one also has the fixed User-Agent
    (`aws.USER_AGENT`). A client made anew (tests) is picked up on the next call."""
    shared = aws.client("dynamodb")
    if connection._client is not shared:
        connection._client = shared
    return connection


class Item(Model):
    """The base of every model: its table's connection goes through the process's one client."""

    @classmethod
    def _get_connection(cls) -> TableConnection:
        table = super()._get_connection()
        _on_shared_client(table.connection)
        return table


@cache
def _transactions() -> Connection:
    return Connection(region=get_settings().region)


def transaction() -> TransactWrite:
    return TransactWrite(connection=_on_shared_client(_transactions()))


def delete_all(model: type[ModelT], items: Iterable[ModelT]) -> int:
    """Delete these items of `model`'s table (e.g. what a keys-only query finds), 25 to a request,
    unprocessed ones retried by pynamodb. The number deleted."""
    deleted = 0
    with model.batch_write() as batch:
        for item in items:
            batch.delete(item)
            deleted += 1
    return deleted


def one_page(model: type[ModelT], results: ResultIterator[ModelT]) -> tuple[list[ModelT], dict[str, Any] | None]:
    """The first page of a query (one request, whatever its filter left) as models, and the key the
    next page starts after (None at the end): for listings that bound what one call reads."""
    page = next(results.page_iter, None)
    items = [model.from_raw_data(raw) for raw in (page or {}).get("Items", [])]
    return items, results.page_iter.last_evaluated_key


def bring_up(model: type[ModelT], kept_before: Condition, actions_of: Callable[[ModelT], list[Action]],
             unchanged: Callable[[ModelT], Condition]) -> int:
    """A one-off step after an upgrade: give each item that matches `kept_before` (what an earlier
    version kept) the actions `actions_of` it, unless it changed since it was read (`unchanged`);
    how many were given them. It reads the whole table: never on a request, consumer or schedule."""
    given = 0
    for item in model.scan(filter_condition=kept_before):
        if applied(partial(item.update, actions=actions_of(item), condition=unchanged(item))):
            given += 1
    return given
