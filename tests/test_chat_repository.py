"""Chat's repository in-process against a faked DynamoDB: status changes that race each other.

Given a conversation read by two admins at once, the change written second must fail rather
than undo the first: a close racing a take-over never reopens the closed conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.chat import repository
from chalicelib.chat.repository import ConversationItem, MessageItem
from tests.faked_stage import faked_stage


@pytest.fixture
def stage() -> Iterator[str]:
    with faked_stage(ConversationItem, MessageItem) as name:
        yield name


def test_a_take_over_decided_before_a_close_landed_does_not_reopen_it(stage: str) -> None:
    # Given an escalated conversation, read by two admins
    conversation, _ = repository.open_or_create_conversation("client-1")
    escalated = repository.set_status(conversation, "escalated", None)
    seen_by_closer = repository.get_conversation(escalated.id)
    seen_by_taker = repository.get_conversation(escalated.id)
    assert seen_by_closer is not None and seen_by_taker is not None
    # When the close lands first
    repository.set_status(seen_by_closer, "closed", "admin-a")
    # Then the take-over decided on the escalated status fails, and the conversation stays closed
    with pytest.raises(repository.StatusChangedError):
        repository.set_status(seen_by_taker, "taken_over", "admin-b")
    final = repository.get_conversation(escalated.id)
    assert final is not None and final.status == "closed" and final.admin_id == "admin-a"


def test_client_messages_are_counted_per_window_up_to_the_limit(stage: str) -> None:
    conversation, _ = repository.open_or_create_conversation("client-2")
    assert all(repository.count_client_message(conversation, "2026-12-04T10:00", 3) for _ in range(3))
    assert not repository.count_client_message(conversation, "2026-12-04T10:00", 3)
    assert repository.count_client_message(conversation, "2026-12-04T10:01", 3)  # a new minute starts at one
    assert repository.count_client_message(conversation, "2026-12-04T10:01", 3)


def test_first_messages_racing_to_start_a_window_all_count_within_the_limit(stage: str) -> None:
    # A message that loses the race to start the window must count in it, not be refused
    conversation, _ = repository.open_or_create_conversation("client-3")
    with ThreadPoolExecutor(max_workers=8) as pool:
        counted = list(pool.map(lambda _: repository.count_client_message(conversation, "2026-12-04T11:00", 8),
                                range(8)))
    assert counted == [True] * 8
    assert not repository.count_client_message(conversation, "2026-12-04T11:00", 8)
