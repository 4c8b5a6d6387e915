"""Fixtures the unit tests of several contexts share."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from chalicelib import names
from chalicelib.monitoring.replica import MeterItem
from chalicelib.monitoring.totals import HourTotalItem
from tests.faked_stage import REGION, faked_stage
from tests.unit.fakes import InMemoryDevices, RecordingEvents


@pytest.fixture
def store() -> InMemoryDevices:
    """The devices repository on dictionaries."""
    return InMemoryDevices()


@pytest.fixture
def events() -> RecordingEvents:
    """The outbox port: every event delivered, in order."""
    return RecordingEvents()


@pytest.fixture(scope="module")
def meter_tables() -> Iterator[str]:
    """Monitoring's meters and hourly totals in moto (with the notifications queue), for one module."""
    with faked_stage() as name:
        boto3.client("sqs", region_name=REGION).create_queue(QueueName=names.resource_name("notifications", name))
        yield name


@pytest.fixture
def meter_stage(meter_tables: str) -> str:
    """The module's meter tables, emptied: each test's fleet is its own."""
    for model in (MeterItem, HourTotalItem):
        with model.batch_write() as batch:
            for item in model.scan():
                batch.delete(item)
    return meter_tables
