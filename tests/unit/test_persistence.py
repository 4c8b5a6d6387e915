"""Every model and transaction sends through the process's one DynamoDB client.

A botocore client costs about a tenth of a second of CPU to make; pynamodb alone would make
one for each model class in every new process (a cold start), without the fixed User-Agent.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest

import chalicelib
from chalicelib import aws
from chalicelib.platform import persistence
from chalicelib.platform.persistence import Item
from tests.faked_stage import faked_stage


def every_model() -> list[type[Item]]:
    """Every model of the package (each module imported, then the subclasses of Item found)."""
    for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        importlib.import_module(module.name)
    found, stack = [], list(Item.__subclasses__())
    while stack:
        model = stack.pop()
        found.append(model)
        stack.extend(model.__subclasses__())
    return found


@pytest.fixture
def models() -> Iterator[list[type[Item]]]:
    """Every model, in a faked stage whose clients and connections start afresh."""
    models = every_model()
    with faked_stage():
        yield models


def test_every_model_and_transaction_goes_through_one_client_made_once(
        models: list[type[Item]], monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    create_client = botocore.session.Session.create_client

    def counting(self: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        made.append(service_name)
        return create_client(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    assert len(models) >= 17  # the repositories' tables, and none was missed by the walk
    clients = {id(model._get_connection().connection.client) for model in models}
    clients.add(id(persistence.transaction()._connection.client))
    assert clients == {id(aws.client("dynamodb"))}
    assert made == ["dynamodb"]


def test_a_client_made_anew_is_the_one_the_models_use_next(models: list[type[Item]]) -> None:
    model = models[0]
    before = model._get_connection().connection.client
    aws._clients.clear()  # as when the endpoint or the credentials change under a warm process
    after = model._get_connection().connection.client
    assert after is aws.client("dynamodb") and after is not before
