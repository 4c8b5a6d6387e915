"""Chat's repository in-process against a faked DynamoDB: status changes that race each other.

Given a conversation read by two admins at once, the change written second must fail rather
than undo the first: a close racing a take-over never reopens the closed conversation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from chalicelib import errors
from chalicelib.chat import repository
from chalicelib.chat.domain import STATUS_ORDER, Conversation, StatusChangedError
from chalicelib.chat.repository import DynamoChat
from tests.faked_stage import faked_stage


@pytest.fixture
def chat() -> Iterator[DynamoChat]:
    with faked_stage():
        yield DynamoChat()


def test_a_take_over_decided_before_a_close_landed_does_not_reopen_it(chat: DynamoChat) -> None:
    # Given an escalated conversation, read by two admins
    conversation, _ = chat.open_or_create_conversation("client-1")
    escalated = chat.set_status(conversation, "escalated", None)
    seen_by_closer = chat.get_conversation(escalated.id)
    seen_by_taker = chat.get_conversation(escalated.id)
    assert seen_by_closer is not None and seen_by_taker is not None
    # When the close lands first
    chat.set_status(seen_by_closer, "closed", "admin-a")
    # Then the take-over decided on the escalated status fails, and the conversation stays closed
    with pytest.raises(StatusChangedError):
        chat.set_status(seen_by_taker, "taken_over", "admin-b")
    final = chat.get_conversation(escalated.id)
    assert final is not None and final.status == "closed" and final.admin_id == "admin-a"


def test_client_messages_are_counted_per_window_up_to_the_limit(chat: DynamoChat) -> None:
    conversation, _ = chat.open_or_create_conversation("client-2")
    assert all(chat.count_client_message(conversation, "2026-12-04T10:00", 3) for _ in range(3))
    assert not chat.count_client_message(conversation, "2026-12-04T10:00", 3)
    assert chat.count_client_message(conversation, "2026-12-04T10:01", 3)  # a new minute starts at one
    assert chat.count_client_message(conversation, "2026-12-04T10:01", 3)


def test_a_message_that_loses_the_race_to_start_a_window_counts_in_it(
    chat: DynamoChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a conversation whose window is not started yet, and another message that starts it
    # in the instant between this message's count (no window yet) and its own start
    conversation, _ = chat.open_or_create_conversation("client-3")
    real = repository.counted_in_window
    raced: list[bool] = []

    def racing(count: Callable[[], object], start: Callable[[], object]) -> bool:
        def start_after_the_other() -> object:
            raced.append(real(count, start))  # the other message wins the start
            return start()  # ours fails its condition: the window is current now

        return real(count, start_after_the_other)

    monkeypatch.setattr(repository, "counted_in_window", racing)
    # Then this message counts in the window the other started: two of the limit, not refused
    assert chat.count_client_message(conversation, "2026-12-04T11:00", 3)
    monkeypatch.setattr(repository, "counted_in_window", real)
    assert raced == [True]
    assert chat.count_client_message(conversation, "2026-12-04T11:00", 3)  # the third
    assert not chat.count_client_message(conversation, "2026-12-04T11:00", 3)


def walk(page: Callable[[str | None], tuple[list[Conversation], str | None]]) -> list[str]:
    """Every conversation id a listing gives, page by page."""
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        found, cursor = page(cursor)
        ids.extend(c.id for c in found)
        if cursor is None:
            return ids
    raise AssertionError("the listing never ended")


def test_conversations_are_listed_page_by_page_those_waiting_for_a_human_first(chat: DynamoChat) -> None:
    made = {}
    for n, status in enumerate(["bot", "escalated", "closed", "bot", "taken_over", "escalated", "closed"]):
        conversation, _ = chat.open_or_create_conversation(f"lister-{n}")
        made[conversation.id] = chat.set_status(conversation, status, "admin-1" if status == "taken_over" else None)
        time.sleep(0.002)  # distinct activity times (milliseconds), so "newest first" is one order
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    newest_first = sorted(made, key=lambda i: made[i].updated_at, reverse=True)
    expected = sorted(newest_first, key=lambda i: order[made[i].status])

    assert walk(lambda cursor: chat.all_conversations(2, cursor)) == expected
    assert walk(lambda cursor: chat.all_conversations(100, cursor)) == expected
    with pytest.raises(errors.ValidationError):
        chat.all_conversations(2, "opened.")


def test_a_clients_conversations_page_by_page_and_anothers_cursor_is_refused(chat: DynamoChat) -> None:
    ids = []
    for _ in range(3):
        conversation, _ = chat.open_or_create_conversation("pager")
        ids.append(chat.set_status(conversation, "closed", None).id)
        time.sleep(0.002)
    for _ in range(2):
        conversation, _ = chat.open_or_create_conversation("someone-else")
        chat.set_status(conversation, "closed", None)

    assert walk(lambda cursor: chat.conversations_of("pager", 1, cursor)) == ids[::-1]  # newest first
    _, foreign = chat.conversations_of("someone-else", 1, None)
    assert foreign is not None
    with pytest.raises(errors.ValidationError):
        chat.conversations_of("pager", 1, foreign)


def test_messages_come_back_as_domain_values_in_order_page_by_page_with_their_readers(chat: DynamoChat) -> None:
    conversation, _ = chat.open_or_create_conversation("writer")
    sent = []
    for n in range(3):
        sent.append(chat.add_message(conversation.id, "writer", "client", f"question {n}"))
        time.sleep(0.002)  # ids sort by milliseconds first
    chat.mark_read(conversation.id, sent[1].id, "admin-1")
    chat.mark_read(conversation.id, sent[1].id, "writer")

    assert [m.text for m in sent] == ["question 0", "question 1", "question 2"]
    assert sent[0].read_by == frozenset() and sent[0].sender_kind == "client"
    assert chat.get_message(conversation.id, sent[1].id) == replace(sent[1], read_by=frozenset({"admin-1", "writer"}))
    assert chat.get_message(conversation.id, "0000000000000-nothing") is None
    first, cursor = chat.messages(conversation.id, 2, None)
    rest, _ = chat.messages(conversation.id, 2, cursor)
    assert [m.id for m in first + rest] == [m.id for m in sent] == sorted(m.id for m in sent)
    with pytest.raises(errors.ValidationError):
        chat.messages(conversation.id, 2, "not-a-cursor")
