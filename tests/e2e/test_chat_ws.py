"""The support chat over a real WebSocket: FAQ answers, the polite fallback without Gemini,
escalation, an admin's take-over, replies, typing and read receipts, closing, who may do what,
and the conversations over REST.

Given the product app under the local runtime (`ems`, which has no Gemini key), clients and
admins talk through its WebSocket gateway; each test has its own clients, so each has its own
conversation. Frames that must not arrive are checked after a ping round trip and a quiet moment.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.accounts import Account, api, new_client
from tests.harness import RuntimeProcess
from tests.sockets import Frame, Socket, sockets

FALLBACK_START = "Sorry, I don't have an answer to that right now."
UNMATCHED_QUESTION = "Why is the sky purple on Tuesdays?"


def chat_message(kind: str | None = None, conversation_id: str | None = None, text: str | None = None
                 ) -> Callable[[Frame], bool]:
    def match(frame: Frame) -> bool:
        message = frame.get("message", {})
        return (frame.get("type") == "chat.message" and (kind is None or message.get("sender_kind") == kind)
                and (conversation_id is None or message.get("conversation_id") == conversation_id)
                and (text is None or message.get("text") == text))
    return match


def conversation_status(status: str, conversation_id: str | None = None, client_id: str | None = None
                        ) -> Callable[[Frame], bool]:
    def match(frame: Frame) -> bool:
        conversation = frame.get("conversation", {})
        return (frame.get("type") == "chat.conversation" and conversation.get("status") == status
                and (conversation_id is None or conversation.get("id") == conversation_id)
                and (client_id is None or conversation.get("client_id") == client_id))
    return match


def of_conversation(conversation_id: str) -> Callable[[Frame], bool]:
    return lambda f: (f.get("conversation_id") == conversation_id
                      or f.get("message", {}).get("conversation_id") == conversation_id
                      or f.get("conversation", {}).get("id") == conversation_id)


def ask(client: Socket, text: str) -> str:
    """The client sends a question; returns its conversation's id (from the echo of the question)."""
    echo = client.request({"action": "chat.send", "text": text}, chat_message("client", text=text), "the question")
    return str(echo["message"]["conversation_id"])


def messages_of(ems: RuntimeProcess, account: Account, conversation_id: str) -> list[dict[str, Any]]:
    response = api(ems, "GET", f"/chat/conversations/{conversation_id}/messages?limit=200", account)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_a_faq_question_gets_a_rule_answer_seen_by_the_client_and_the_admins_only(
    ems: RuntimeProcess, admin: Account
) -> None:
    client, stranger = new_client(ems), new_client(ems, "stranger")
    with sockets(ems, client, admin, stranger) as (asker, console, outsider):
        # When a client asks how to read the chart
        conversation_id = ask(asker, "How do I read the chart?")
        # Then a new conversation is announced and the rule's answer reaches the client and the admin
        for socket in (asker, console):
            socket.expect(conversation_status("bot", conversation_id, client.id), "the new conversation")
            socket.expect(chat_message("client", conversation_id, "How do I read the chart?"), "the question")
            answer = socket.expect(chat_message("rule", conversation_id), "the FAQ answer")[0]["message"]
            assert "one bar per hour" in answer["text"] and answer["sender_id"] == "faq"
            assert set(answer) >= {"id", "conversation_id", "sender_id", "sender_kind", "text", "created_at"}
        for socket in (asker, console, outsider):
            socket.settle()
        # And no other client sees any of it, and no other answer came
        assert outsider.matching(of_conversation(conversation_id)) == []
        assert len(asker.matching(chat_message(conversation_id=conversation_id))) == 2


def test_an_unmatched_question_without_gemini_gets_the_polite_fallback_offering_a_human(
    ems: RuntimeProcess, admin: Account
) -> None:
    client = new_client(ems)
    with sockets(ems, client, admin) as (asker, console):
        conversation_id = ask(asker, UNMATCHED_QUESTION)
        for socket in (asker, console):
            fallback = socket.expect(chat_message("system", conversation_id), "the fallback")[0]["message"]
            assert fallback["text"].startswith(FALLBACK_START) and "human" in fallback["text"]
        assert not asker.matching(chat_message("ai", conversation_id))


def test_asking_for_a_human_escalates_to_the_admins(ems: RuntimeProcess, admin: Account) -> None:
    client = new_client(ems)
    with sockets(ems, client, admin) as (asker, console):
        conversation_id = ask(asker, "I want a human")
        frame = console.expect(conversation_status("escalated", conversation_id), "the escalation")[0]
        assert frame["conversation"] | {"created_at": "-", "updated_at": "-"} == {
            "id": conversation_id, "client_id": client.id, "client_name": client.username, "status": "escalated",
            "admin_id": None, "created_at": "-", "updated_at": "-"}  # registered without a name: the username
        asker.expect(conversation_status("escalated", conversation_id), "the escalation")
        note = asker.expect(chat_message("system", conversation_id), "the note")[0]["message"]
        assert "administrator" in note["text"]
        asker.settle()
        assert not asker.matching(chat_message("rule", conversation_id))


def test_the_escalate_action_escalates_too(ems: RuntimeProcess, admin: Account) -> None:
    client = new_client(ems)
    with sockets(ems, client, admin) as (asker, console):
        conversation_id = ask(asker, "How do I read the chart?")
        asker.expect(chat_message("rule", conversation_id), "the FAQ answer")
        asker.send({"action": "chat.escalate"})
        console.expect(conversation_status("escalated", conversation_id, client.id), "the escalation")
        asker.expect(conversation_status("escalated", conversation_id), "the escalation")


def test_a_taken_over_conversation_gets_no_automatic_answers_and_carries_replies_typing_and_reads(
    ems: RuntimeProcess, admin: Account
) -> None:
    client = new_client(ems)
    with sockets(ems, client, admin) as (asker, console):
        conversation_id = ask(asker, "I want a human")
        console.expect(conversation_status("escalated", conversation_id), "the escalation")
        # When the admin takes the conversation over
        console.send({"action": "chat.take_over", "conversation_id": conversation_id})
        # Then both sides see its new status, with the admin named
        for socket in (asker, console):
            frame = socket.expect(conversation_status("taken_over", conversation_id), "the take-over")[0]
            assert frame["conversation"]["admin_id"] == admin.id
        # When the client asks a question a FAQ rule would answer
        question = "How do I read the chart?"
        asker.send({"action": "chat.send", "text": question})
        sent = console.expect(chat_message("client", conversation_id, question), "the question")[0]["message"]
        assert sent["sender_id"] == client.id
        # Then it reaches the admin, and nothing answers it automatically
        asker.expect(chat_message("client", conversation_id, question), "the echo")
        for socket in (asker, console):
            socket.settle()
        assert not asker.matching(chat_message("rule", conversation_id))
        assert messages_of(ems, client, conversation_id)[-1]["id"] == sent["id"]
        # When the admin replies, Then the client gets the reply
        console.send({"action": "chat.reply", "conversation_id": conversation_id, "text": "Hello, I am here."})
        reply = asker.expect(chat_message("admin", conversation_id, "Hello, I am here."), "the reply")[0]["message"]
        assert reply["sender_id"] == admin.id
        # And typing goes both ways, with the sender named
        asker.send({"action": "chat.typing", "typing": True})
        client_typing = console.expect(lambda f: f.get("type") == "chat.typing" and f.get("sender_id") == client.id,
                                       "the client typing")[0]
        assert client_typing == {"type": "chat.typing", "conversation_id": conversation_id,
                                 "sender_id": client.id, "typing": True}
        console.send({"action": "chat.typing", "conversation_id": conversation_id, "typing": False})
        admin_typing = asker.expect(lambda f: f.get("type") == "chat.typing" and f.get("sender_id") == admin.id,
                                    "the admin typing")[0]
        assert admin_typing == {"type": "chat.typing", "conversation_id": conversation_id,
                                "sender_id": admin.id, "typing": False}
        # And read receipts go both ways, with the reader named
        asker.send({"action": "chat.read", "message_id": reply["id"]})
        read_by_client = console.expect(lambda f: f.get("type") == "chat.read" and f.get("reader_id") == client.id,
                                        "the client's read receipt")[0]
        assert read_by_client == {"type": "chat.read", "conversation_id": conversation_id,
                                  "message_id": reply["id"], "reader_id": client.id}
        console.send({"action": "chat.read", "conversation_id": conversation_id, "message_id": sent["id"]})
        read_by_admin = asker.expect(lambda f: f.get("type") == "chat.read" and f.get("reader_id") == admin.id,
                                     "the admin's read receipt")[0]
        assert read_by_admin == {"type": "chat.read", "conversation_id": conversation_id,
                                 "message_id": sent["id"], "reader_id": admin.id}
        stored = {m["id"]: m for m in messages_of(ems, client, conversation_id)}
        assert stored[reply["id"]]["read_by"] == [client.id] and stored[sent["id"]]["read_by"] == [admin.id]
        # And reading a message of no conversation of the client's is refused
        error = asker.request({"action": "chat.read", "message_id": "0000000000000-nothing"},
                              lambda f: f.get("type") == "error", "an error")
        assert error["action"] == "chat.read" and error["error"]["code"] == "not_found"


def test_a_closed_conversation_is_followed_by_a_new_one_on_the_next_message(
    ems: RuntimeProcess, admin: Account
) -> None:
    client = new_client(ems)
    with sockets(ems, client, admin) as (asker, console):
        first = ask(asker, "I want a human")
        console.expect(conversation_status("escalated", first), "the escalation")
        console.send({"action": "chat.reply", "conversation_id": first, "text": "Done, anything else?"})
        asker.expect(chat_message("admin", first), "the reply")
        # When the admin closes it, Then both sides see it closed
        console.send({"action": "chat.close", "conversation_id": first})
        for socket in (asker, console):
            frame = socket.expect(conversation_status("closed", first), "the closing")[0]
            assert frame["conversation"]["client_id"] == client.id
        # When the client writes again, Then a new conversation opens and the bot answers again
        second = ask(asker, "How do I read the chart?")
        assert second != first
        console.expect(conversation_status("bot", second, client.id), "the new conversation")
        asker.expect(chat_message("rule", second), "the FAQ answer")
        statuses = {c["id"]: c["status"] for c in api(ems, "GET", "/chat/conversations", client).json()["items"]}
        assert statuses == {first: "closed", second: "bot"}


def test_first_messages_sent_at_once_from_two_sockets_share_one_conversation(ems: RuntimeProcess) -> None:
    # Given clients with two sockets each (two browser tabs) and no conversation yet
    clients = [new_client(ems) for _ in range(6)]
    with sockets(ems, *[c for c in clients for _ in range(2)]) as opened:
        # When every socket sends a first question at the same moment
        for i, socket in enumerate(opened):
            socket.send({"action": "chat.send", "text": f"{UNMATCHED_QUESTION} ({i})"})
        for i, socket in enumerate(opened):
            socket.expect(chat_message("client", text=f"{UNMATCHED_QUESTION} ({i})"), "the own question")
    # Then each client has one conversation, holding both questions
    for client in clients:
        (conversation,) = api(ems, "GET", "/chat/conversations", client).json()["items"]
        questions = [m for m in messages_of(ems, client, conversation["id"]) if m["sender_kind"] == "client"]
        assert len(questions) == 2


def test_a_client_sending_more_than_ten_messages_a_minute_is_slowed_down(ems: RuntimeProcess) -> None:
    # Each message no rule answers costs a Gemini call: a client may send ten a minute
    client = new_client(ems)
    while dt.datetime.now(dt.UTC).second > 45:  # the eleven messages fall in one clock minute
        time.sleep(0.5)
    with sockets(ems, client) as (asker,):
        conversation = ask(asker, "How do I read the chart? (1)")
        for i in range(2, 11):
            ask(asker, f"How do I read the chart? ({i})")
        # When an eleventh follows within the minute (two sockets at once could not slip past: it is one
        # conditional write), Then it gets a throttling error frame and is not stored
        error = asker.request({"action": "chat.send", "text": "And again?"},
                              lambda f: f.get("type") == "error", "the throttling error")
        assert error["action"] == "chat.send" and error["error"]["code"] == "too_many_requests"
    questions = [m for m in messages_of(ems, client, conversation) if m["sender_kind"] == "client"]
    assert len(questions) == 10


@pytest.mark.parametrize("frame", [
    {"action": "chat.take_over", "conversation_id": "c-x"},
    {"action": "chat.reply", "conversation_id": "c-x", "text": "hello"},
    {"action": "chat.close", "conversation_id": "c-x"},
], ids=lambda f: f["action"])
def test_a_client_using_an_admin_action_gets_a_forbidden_error_frame(ems: RuntimeProcess, frame: Frame) -> None:
    client = new_client(ems)
    with sockets(ems, client) as (socket,):
        error = socket.request(frame, lambda f: f.get("type") == "error", "an error frame")
        assert error["action"] == frame["action"] and error["error"]["code"] == "forbidden"
        socket.request({"action": "ping"}, lambda f: f.get("type") == "pong", "pong")


def test_a_client_cannot_act_on_another_clients_conversation_but_admins_must_name_one(
    ems: RuntimeProcess, admin: Account
) -> None:
    owner, other = new_client(ems), new_client(ems, "other")
    with sockets(ems, owner, other, admin) as (asker, intruder, console):
        conversation_id = ask(asker, UNMATCHED_QUESTION)
        error = intruder.request({"action": "chat.typing", "typing": True, "conversation_id": conversation_id},
                                 lambda f: f.get("type") == "error", "an error")
        assert error["error"]["code"] == "not_found"
        error = console.request({"action": "chat.typing", "typing": True},
                                lambda f: f.get("type") == "error", "an error")
        assert error["error"]["code"] == "validation_error"
        error = console.request({"action": "chat.send", "text": "hi"}, lambda f: f.get("type") == "error", "an error")
        assert error["error"]["code"] == "validation_error"
        asker.settle()
        assert not asker.matching(lambda f: f.get("type") == "chat.typing")


def test_conversations_over_rest_clients_see_their_own_and_admins_all_escalated_first(
    ems: RuntimeProcess, admin: Account
) -> None:
    waiting, chatting = new_client(ems), new_client(ems)
    with sockets(ems, waiting, chatting) as (first, second):
        escalated = ask(first, "I want a human")
        first.expect(conversation_status("escalated", escalated), "the escalation")
        bot = ask(second, UNMATCHED_QUESTION)
        second.expect(chat_message("system", bot), "the fallback")
    # A client lists only its own conversations
    own = api(ems, "GET", "/chat/conversations", waiting)
    assert own.status_code == 200 and [c["id"] for c in own.json()["items"]] == [escalated]
    assert own.json()["items"][0]["client_id"] == waiting.id and own.json()["items"][0]["status"] == "escalated"
    # An admin lists every conversation, the escalated ones first
    listed = api(ems, "GET", "/chat/conversations?limit=200", admin).json()["items"]
    ids = [c["id"] for c in listed]
    assert escalated in ids and bot in ids and ids.index(escalated) < ids.index(bot)
    statuses = [c["status"] for c in listed]
    assert statuses == sorted(statuses, key=lambda s: s != "escalated")
    # A conversation's messages: its client and admins, nobody else
    assert [m["sender_kind"] for m in messages_of(ems, chatting, bot)] == ["client", "system"]
    assert [m["sender_kind"] for m in messages_of(ems, admin, bot)] == ["client", "system"]
    stolen = api(ems, "GET", f"/chat/conversations/{bot}/messages", waiting)
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"
    assert api(ems, "GET", "/chat/conversations/c-nothing/messages", admin).status_code == 404
    assert api(ems, "GET", "/chat/conversations").status_code == 401
