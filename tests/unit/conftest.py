"""Fixtures the unit tests of several contexts share."""

from __future__ import annotations

import pytest

from tests.unit.fakes import InMemoryDevices, RecordingEvents


@pytest.fixture
def store() -> InMemoryDevices:
    """The devices repository on dictionaries."""
    return InMemoryDevices()


@pytest.fixture
def events() -> RecordingEvents:
    """The outbox port: every event delivered, in order."""
    return RecordingEvents()
