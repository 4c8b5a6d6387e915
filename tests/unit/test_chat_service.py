"""The chat context's use cases through in-memory fakes: FAQ, AI and fallback answers, escalation,
an admin's take-over, replies and closing, who may act on which conversation, the per-minute limit,
where each frame goes, and the listings. No endpoint, no process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.chat.ai import AiUnavailableError
from chalicelib.chat.service import CLOSED_NOTE, ESCALATED_NOTE, FALLBACK_ANSWER, TAKEN_OVER_NOTE, ChatService
from chalicelib.errors import Principal
from chalicelib.settings import get_settings
from tests.unit.fakes import InMemoryChat, Push, RecordingPusher

ADMIN = Principal("admin-1", "admin", "admin")
OTHER_ADMIN = Principal("admin-2", "admin2", "admin")
ALICE = Principal("alice", "alice", "client")
BOB = Principal("bob", "bob", "client")
CHART = "How do I read the chart?"
UNMATCHED = "Why is the sky purple on Tuesdays?"
NOON = dt.datetime(2026, 12, 4, 12, 0, 5, tzinfo=dt.UTC)


class ScriptedAssistant:
    """The AI port: answers `reply`, or is unavailable when it is None; remembers each question."""

    def __init__(self) -> None:
        self.reply: str | None = "You used 4.2 kWh yesterday, under your limit."
        self.asked: list[tuple[str, str]] = []

    def answer(self, question: str, context: str) -> str:
        self.asked.append((question, context))
        if self.reply is None:
            raise AiUnavailableError("not configured")
        return self.reply


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("EMS_CHAT_MAX_MESSAGES_PER_MINUTE", "3")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def store() -> InMemoryChat:
    return InMemoryChat()


@pytest.fixture
def pusher() -> RecordingPusher:
    return RecordingPusher()


@pytest.fixture
def assistant() -> ScriptedAssistant:
    return ScriptedAssistant()


@pytest.fixture
def chat(pusher: RecordingPusher, assistant: ScriptedAssistant, store: InMemoryChat) -> ChatService:
    return ChatService(pusher, context_for=lambda user_id: f"the account of {user_id}", assistant=assistant,
                       repository=store)


def said(pushes: list[Push]) -> list[tuple[str | None, ...]]:
    """What the frames say, in order: ("status", id, status, admin), (kind, sender, text),
    ("typing", sender, typing) or ("read", message id, reader)."""
    out: list[tuple[str | None, ...]] = []
    for push in pushes:
        frame = push.frame
        if frame["type"] == "chat.conversation":
            c = frame["conversation"]
            out.append(("status", c["id"], c["status"], c["admin_id"]))
        elif frame["type"] == "chat.message":
            m = frame["message"]
            out.append((m["sender_kind"], m["sender_id"], m["text"]))
        elif frame["type"] == "chat.typing":
            out.append(("typing", frame["sender_id"], str(frame["typing"])))
        else:
            out.append(("read", frame["message_id"], frame["reader_id"]))
    return out


def the_message(pushes: list[Push], kind: str) -> dict[str, Any]:
    (message,) = [p.frame["message"] for p in pushes if p.frame["type"] == "chat.message"
                  and p.frame["message"]["sender_kind"] == kind]
    return dict(message)


def escalated(chat: ChatService, pusher: RecordingPusher, client: Principal = ALICE) -> str:
    """The client's new conversation, escalated; its id (the frames so far are taken)."""
    chat.send(client, "I want a human", NOON)
    (frame,) = [p.frame for p in pusher.take() if p.frame.get("conversation", {}).get("status") == "escalated"]
    return str(frame["conversation"]["id"])


# --- answers --------------------------------------------------------------------------------


def test_a_faq_question_gets_the_rules_answer_without_asking_the_ai(
    chat: ChatService, pusher: RecordingPusher, assistant: ScriptedAssistant, store: InMemoryChat
) -> None:
    chat.send(ALICE, CHART, NOON)

    pushes = pusher.take()
    assert said(pushes)[:2] == [("status", "c-alice-0", "bot", None), ("client", "alice", CHART)]
    answer = the_message(pushes, "rule")
    assert answer["sender_id"] == "faq" and "one bar per hour" in answer["text"]
    assert answer["conversation_id"] == "c-alice-0" and answer["read_by"] == []
    assert len(pushes) == 3 and assistant.asked == []
    assert [m.sender_kind for m in store.stored.values()] == ["client", "rule"]


def test_an_unmatched_question_is_answered_by_the_ai_given_the_clients_own_account(
    chat: ChatService, pusher: RecordingPusher, assistant: ScriptedAssistant
) -> None:
    chat.send(ALICE, UNMATCHED, NOON)

    assert assistant.asked == [(UNMATCHED, "the account of alice")]
    assert said(pusher.take())[1:] == [("client", "alice", UNMATCHED),
                                       ("ai", "gemini", "You used 4.2 kWh yesterday, under your limit.")]


def test_without_the_ai_an_unmatched_question_gets_the_polite_fallback(
    chat: ChatService, pusher: RecordingPusher, assistant: ScriptedAssistant
) -> None:
    assistant.reply = None

    chat.send(ALICE, UNMATCHED, NOON)

    assert said(pusher.take())[1:] == [("client", "alice", UNMATCHED), ("system", "system", FALLBACK_ANSWER)]
    assert len(assistant.asked) == 1


def test_asking_for_a_human_escalates_and_then_nothing_answers_automatically(
    chat: ChatService, pusher: RecordingPusher, assistant: ScriptedAssistant
) -> None:
    chat.send(ALICE, "I want a human", NOON)
    assert said(pusher.take()) == [("status", "c-alice-0", "bot", None), ("client", "alice", "I want a human"),
                                   ("status", "c-alice-0", "escalated", None), ("system", "system", ESCALATED_NOTE)]

    chat.send(ALICE, CHART, NOON)
    chat.send(ALICE, UNMATCHED, NOON)
    chat.escalate(ALICE)  # already escalated: nothing happens

    assert said(pusher.take()) == [("client", "alice", CHART), ("client", "alice", UNMATCHED)]
    assert assistant.asked == []


def test_the_escalate_action_escalates_a_conversation_the_bot_has(chat: ChatService, pusher: RecordingPusher) -> None:
    chat.send(ALICE, CHART, NOON)
    pusher.take()

    chat.escalate(ALICE)

    assert said(pusher.take()) == [("status", "c-alice-0", "escalated", None), ("system", "system", ESCALATED_NOTE)]


# --- admins ---------------------------------------------------------------------------------


def test_an_admin_takes_over_replies_and_closes_and_the_next_message_opens_a_new_conversation(
    chat: ChatService, pusher: RecordingPusher, assistant: ScriptedAssistant, store: InMemoryChat
) -> None:
    first = escalated(chat, pusher)

    chat.take_over(ADMIN, first)
    chat.take_over(ADMIN, first)  # already theirs: nothing happens
    chat.send(ALICE, CHART, NOON)
    chat.reply(ADMIN, first, "Hello, I am here.")
    chat.close(ADMIN, first)
    chat.close(ADMIN, first)  # already closed: nothing happens
    assert said(pusher.take()) == [
        ("status", first, "taken_over", "admin-1"), ("system", "system", TAKEN_OVER_NOTE),
        ("client", "alice", CHART), ("admin", "admin-1", "Hello, I am here."),
        ("system", "system", CLOSED_NOTE), ("status", first, "closed", "admin-1")]
    with pytest.raises(errors.ConflictError):
        chat.take_over(OTHER_ADMIN, first)
    with pytest.raises(errors.ConflictError):
        chat.reply(ADMIN, first, "One more thing")

    chat.send(ALICE, CHART, NOON)

    pushes = pusher.take()
    assert said(pushes)[:2] == [("status", "c-alice-1", "bot", None), ("client", "alice", CHART)]
    assert the_message(pushes, "rule")["conversation_id"] == "c-alice-1"
    assert assistant.asked == []
    closed = store.get_conversation(first)
    assert closed is not None and closed.status == "closed"


def test_a_reply_to_a_waiting_conversation_takes_it_over_for_the_replying_admin(
    chat: ChatService, pusher: RecordingPusher
) -> None:
    conversation = escalated(chat, pusher)

    chat.reply(OTHER_ADMIN, conversation, "On it.")

    assert said(pusher.take()) == [("status", conversation, "taken_over", "admin-2"),
                                   ("admin", "admin-2", "On it.")]


def test_a_status_change_decided_on_what_another_admin_changed_meanwhile_is_a_conflict(
    chat: ChatService, pusher: RecordingPusher, store: InMemoryChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an escalated conversation that a second admin reads, and the first admin closes
    conversation = escalated(chat, pusher)
    seen_before_the_close = store.get_conversation(conversation)
    chat.close(ADMIN, conversation)
    pusher.take()
    # When the second admin's take-over, decided on the escalated status, lands
    monkeypatch.setattr(store, "get_conversation", lambda _: seen_before_the_close)
    with pytest.raises(errors.ConflictError):
        chat.take_over(OTHER_ADMIN, conversation)
    # Then the conversation stays closed, by the first admin, and nobody is told otherwise
    assert store.conversations[conversation].status == "closed"
    assert store.conversations[conversation].admin_id == "admin-1"
    assert pusher.take() == []


def test_an_admin_acting_on_a_conversation_that_does_not_exist_is_not_found(chat: ChatService) -> None:
    for act in (lambda: chat.take_over(ADMIN, "c-nobody-0"), lambda: chat.reply(ADMIN, "c-nobody-0", "hi"),
                lambda: chat.close(ADMIN, "c-nobody-0"), lambda: chat.typing(ADMIN, True, "c-nobody-0")):
        with pytest.raises(errors.NotFoundError):
            act()


# --- typing and reading ---------------------------------------------------------------------


def test_typing_and_read_receipts_go_both_ways_and_are_kept(
    chat: ChatService, pusher: RecordingPusher, store: InMemoryChat
) -> None:
    conversation = escalated(chat, pusher)
    chat.reply(ADMIN, conversation, "Hello")
    reply = the_message(pusher.take(), "admin")

    chat.typing(ALICE, True, None)
    chat.typing(ADMIN, False, conversation)
    chat.read(ALICE, reply["id"], conversation)
    chat.read(ADMIN, reply["id"], conversation)

    pushes = pusher.take()
    assert said(pushes) == [("typing", "alice", "True"), ("typing", "admin-1", "False"),
                            ("read", reply["id"], "alice"), ("read", reply["id"], "admin-1")]
    assert pushes[0].frame == {"type": "chat.typing", "conversation_id": conversation, "sender_id": "alice",
                               "typing": True}
    assert pushes[2].frame == {"type": "chat.read", "conversation_id": conversation, "message_id": reply["id"],
                               "reader_id": "alice"}
    page = chat.messages(ALICE, conversation, 50, None)
    assert [m.read_by for m in page.items if m.id == reply["id"]] == [["admin-1", "alice"]]


def test_a_client_cannot_type_or_read_in_another_clients_conversation(
    chat: ChatService, pusher: RecordingPusher
) -> None:
    chat.send(ALICE, CHART, NOON)
    question = the_message(pusher.take(), "client")
    with pytest.raises(errors.NotFoundError):
        chat.typing(BOB, True, "c-alice-0")  # Bob has no conversation at all
    chat.send(BOB, CHART, NOON)
    pusher.take()

    with pytest.raises(errors.NotFoundError):
        chat.typing(BOB, True, "c-alice-0")
    with pytest.raises(errors.NotFoundError):
        chat.read(BOB, question["id"], "c-alice-0")
    with pytest.raises(errors.NotFoundError):
        chat.read(BOB, question["id"], None)  # not a message of Bob's own conversation
    with pytest.raises(errors.NotFoundError):
        chat.messages(BOB, "c-alice-0", 50, None)
    with pytest.raises(errors.NotFoundError):
        chat.read(ALICE, "0000000000000-nothing", None)

    assert pusher.take() == []


def test_an_admin_must_name_the_conversation_to_type_or_read_in(chat: ChatService, pusher: RecordingPusher) -> None:
    chat.send(ALICE, CHART, NOON)
    question = the_message(pusher.take(), "client")

    with pytest.raises(errors.ValidationError) as typing:
        chat.typing(ADMIN, True, None)
    with pytest.raises(errors.ValidationError) as reading:
        chat.read(ADMIN, question["id"], None)

    assert [d.field for d in typing.value.details + reading.value.details] == ["conversation_id", "conversation_id"]
    assert pusher.take() == []


# --- limits and audience --------------------------------------------------------------------


def test_a_client_gets_a_few_messages_a_minute_and_the_one_over_is_refused_and_not_stored(
    chat: ChatService, pusher: RecordingPusher, store: InMemoryChat
) -> None:
    for n in range(3):
        chat.send(ALICE, f"{CHART} ({n})", NOON)
    pusher.take()

    with pytest.raises(errors.ThrottledError):
        chat.send(ALICE, "And again?", NOON + dt.timedelta(seconds=30))

    assert pusher.take() == []
    assert [m.text for m in store.stored.values() if m.sender_kind == "client"] == [
        f"{CHART} ({n})" for n in range(3)]
    chat.send(ALICE, "A new minute", NOON + dt.timedelta(minutes=1))  # a new minute: accepted
    assert said(pusher.take())[0] == ("client", "alice", "A new minute")


def test_every_frame_goes_to_its_conversations_client_and_the_admins_only(
    chat: ChatService, pusher: RecordingPusher
) -> None:
    chat.send(ALICE, CHART, NOON)
    chat.send(BOB, "I want a human", NOON)
    chat.take_over(ADMIN, "c-bob-0")
    chat.reply(ADMIN, "c-bob-0", "Hello Bob")
    chat.typing(ALICE, True, None)
    chat.close(ADMIN, "c-alice-0")

    pushes = pusher.take()
    assert len(pushes) == 13 and all(p.admins for p in pushes)
    for push in pushes:
        frame = push.frame
        conversation_id = (frame.get("conversation_id") or frame.get("message", {}).get("conversation_id")
                           or frame["conversation"]["id"])
        assert push.user_ids == ({"c-alice-0": "alice", "c-bob-0": "bob"}[conversation_id],)


# --- listings -------------------------------------------------------------------------------


def test_a_client_lists_its_own_conversations_newest_first_page_by_page(chat: ChatService) -> None:
    for _ in range(3):
        chat.send(ALICE, CHART, NOON)
        chat.close(ADMIN, chat.conversations(ALICE, 1).items[0].id)
    chat.send(ALICE, CHART, NOON)
    chat.send(BOB, CHART, NOON)

    first = chat.conversations(ALICE, 3)
    rest = chat.conversations(ALICE, 3, first.next_cursor)

    assert [(c.id, c.status) for c in first.items + rest.items] == [
        ("c-alice-3", "bot"), ("c-alice-2", "closed"), ("c-alice-1", "closed"), ("c-alice-0", "closed")]
    assert first.next_cursor is not None and rest.next_cursor is None
    assert all(c.client_id == "alice" for c in first.items + rest.items)
    bobs = chat.conversations(BOB, 1)
    assert [c.id for c in bobs.items] == ["c-bob-0"]
    with pytest.raises(errors.ValidationError):
        chat.conversations(BOB, 1, first.next_cursor)  # Alice's cursor, in Bob's list


def test_admins_list_every_conversation_those_waiting_for_a_human_first_page_by_page(
    chat: ChatService, pusher: RecordingPusher
) -> None:
    chat.send(Principal("c1", "c1", "client", name="Client One"), CHART, NOON)  # bot
    escalated(chat, pusher, Principal("c2", "c2", "client"))
    escalated(chat, pusher, Principal("c3", "c3", "client"))
    chat.take_over(ADMIN, "c-c3-0")
    escalated(chat, pusher, Principal("c4", "c4", "client"))
    chat.close(ADMIN, escalated(chat, pusher, Principal("c5", "c5", "client")))
    chat.send(Principal("c6", "c6", "client"), CHART, NOON)  # bot
    escalated(chat, pusher, Principal("c7", "c7", "client"))
    expected = ["c-c7-0", "c-c4-0", "c-c2-0", "c-c3-0", "c-c6-0", "c-c1-0", "c-c5-0"]

    assert [c.id for c in chat.conversations(ADMIN, 100).items] == expected
    # Each carries its client's username, so the console names them without reading every user.
    names = {c.client_id: c.client_name for c in chat.conversations(ADMIN, 100).items}
    assert names["c1"] == "Client One" and names["c4"] == "c4"  # the name, else the username
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(len(expected)):
        page = chat.conversations(ADMIN, 2, cursor)
        ids.extend(c.id for c in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert ids == expected and cursor is None
    with pytest.raises(errors.ValidationError):
        chat.conversations(ADMIN, 2, "opened.")


def test_a_conversations_messages_page_by_page_for_its_client_and_the_admins(chat: ChatService) -> None:
    chat.send(ALICE, "I want a human", NOON)
    chat.reply(ADMIN, "c-alice-0", "Hello")
    expected = [("client", "I want a human"), ("system", ESCALATED_NOTE), ("admin", "Hello")]

    for reader in (ALICE, ADMIN):
        first = chat.messages(reader, "c-alice-0", 2, None)
        assert first.next_cursor is not None
        rest = chat.messages(reader, "c-alice-0", 2, first.next_cursor)
        assert [(m.sender_kind, m.text) for m in first.items + rest.items] == expected
        assert rest.next_cursor is None
    with pytest.raises(errors.NotFoundError):
        chat.messages(ADMIN, "c-nobody-0", 2, None)
