"""The support chat: a client's private conversation, answered by FAQ rules, then Gemini,
then a human admin who can take it over.

Every frame of a conversation goes to its client's open connections and to every admin's;
no other client ever receives it. A conversation taken over by an admin (or waiting for
one) gets no automatic answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from chalicelib import errors
from chalicelib.chat import faq
from chalicelib.chat.ai import AiUnavailableError, GeminiAssistant
from chalicelib.chat.domain import Assistant, ChatRepository, Conversation, Message, StatusChangedError
from chalicelib.errors import Principal
from chalicelib.observability import logger
from chalicelib.platform.websocket import UserPush
from chalicelib.settings import get_settings

FALLBACK_ANSWER = (
    "Sorry, I don't have an answer to that right now. Type \"human\" (or press \"Talk to a person\") "
    "and an administrator will join this conversation."
)
ESCALATED_NOTE = "An administrator has been asked to join this conversation; they will answer here."
TAKEN_OVER_NOTE = "An administrator has joined the conversation."
CLOSED_NOTE = "This conversation was closed. Write again any time to start a new one."


ConversationStatus = Literal["bot", "escalated", "taken_over", "closed"]
SenderKind = Literal["client", "admin", "rule", "ai", "system"]


class ConversationOut(BaseModel):
    id: str
    client_id: str
    client_name: str | None = Field(default=None, description="The client's name (else username) when the "
                                                                "conversation began.")
    status: ConversationStatus
    admin_id: str | None
    created_at: str
    updated_at: str


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None = None


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    sender_id: str
    sender_kind: SenderKind
    text: str
    created_at: str
    read_by: list[str] = Field(default_factory=list)


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class ListQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


def message_out(message: Message) -> MessageOut:
    return MessageOut.model_validate({
        "id": message.id, "conversation_id": message.conversation_id, "sender_id": message.sender_id,
        "sender_kind": message.sender_kind, "text": message.text, "created_at": message.created_at,
        "read_by": sorted(message.read_by)})


class ChatService:
    """The chat context. `context_for(user_id)` describes a client's own account for the assistant;
    the pusher, the assistant and the repository are ports (DynamoDB and Gemini unless given)."""

    def __init__(self, pusher: UserPush, context_for: Callable[[str], str],
                 assistant: Assistant | None = None, repository: ChatRepository | None = None) -> None:
        from chalicelib.chat.repository import DynamoChat

        self._pusher = pusher
        self._context_for = context_for
        self._assistant: Assistant = assistant or GeminiAssistant()
        self._chat: ChatRepository = repository or DynamoChat()

    # --- clients ----------------------------------------------------------------------

    def send(self, client: Principal, text: str, now: dt.datetime | None = None) -> None:
        """A client's question: stored, shown to admins, and answered unless a human has it.

        At most `chat_max_messages_per_minute` a minute: each unanswered one costs a Gemini call.
        """
        conversation, created = self._chat.open_or_create_conversation(client.user_id, client.name or client.username)
        if created:
            self._status_frame(conversation)
        limit = get_settings().chat_max_messages_per_minute
        window = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M")
        if not self._chat.count_client_message(conversation, window, limit):
            raise errors.ThrottledError(f"At most {limit} messages a minute; wait a moment.")
        self._post(conversation, client.user_id, "client", text)
        if conversation.status in ("escalated", "taken_over"):
            return
        if faq.asks_for_human(text):
            self._escalate(conversation)
            return
        rule = faq.match(text)
        if rule is not None:
            self._post(conversation, "faq", "rule", rule.answer)
            return
        try:
            answer = self._assistant.answer(text, self._context_for(client.user_id))
            self._post(conversation, "gemini", "ai", answer)
        except AiUnavailableError:
            self._post(conversation, "system", "system", FALLBACK_ANSWER)

    def escalate(self, client: Principal) -> None:
        conversation, _ = self._chat.open_or_create_conversation(client.user_id, client.name or client.username)
        if conversation.status == "bot":
            self._escalate(conversation)

    # --- both sides -------------------------------------------------------------------

    def typing(self, sender: Principal, typing: bool, conversation_id: str | None) -> None:
        conversation = self._conversation_of(sender, conversation_id)
        self._frame(conversation, {"type": "chat.typing", "conversation_id": conversation.id,
                                   "sender_id": sender.user_id, "typing": typing})

    def read(self, reader: Principal, message_id: str, conversation_id: str | None) -> None:
        conversation = self._conversation_of(reader, conversation_id)
        if self._chat.get_message(conversation.id, message_id) is None:
            raise errors.NotFoundError("No such message in this conversation.")
        self._chat.mark_read(conversation.id, message_id, reader.user_id)
        self._frame(conversation, {"type": "chat.read", "conversation_id": conversation.id,
                                   "message_id": message_id, "reader_id": reader.user_id})

    # --- admins -----------------------------------------------------------------------

    def take_over(self, admin: Principal, conversation_id: str) -> None:
        conversation = self._by_id(conversation_id)
        if conversation.status == "closed":
            raise errors.ConflictError("The conversation is closed.")
        if conversation.status != "taken_over" or conversation.admin_id != admin.user_id:
            conversation = self._set_status(conversation, "taken_over", admin.user_id)
            self._status_frame(conversation)
            self._post(conversation, "system", "system", TAKEN_OVER_NOTE)

    def reply(self, admin: Principal, conversation_id: str, text: str) -> None:
        conversation = self._by_id(conversation_id)
        if conversation.status == "closed":
            raise errors.ConflictError("The conversation is closed.")
        if conversation.status != "taken_over":
            conversation = self._set_status(conversation, "taken_over", admin.user_id)
            self._status_frame(conversation)
        self._post(conversation, admin.user_id, "admin", text)

    def close(self, admin: Principal, conversation_id: str) -> None:
        conversation = self._by_id(conversation_id)
        if conversation.status == "closed":
            return
        conversation = self._set_status(conversation, "closed", conversation.admin_id or admin.user_id)
        self._post(conversation, "system", "system", CLOSED_NOTE)
        self._status_frame(conversation)

    # --- REST -------------------------------------------------------------------------

    def conversations(self, principal: Principal, limit: int, cursor: str | None = None) -> ConversationPage:
        """A page of conversations: a client's own, or (admins) all, those waiting for a human first."""
        found, next_cursor = (self._chat.all_conversations(limit, cursor) if principal.is_admin
                              else self._chat.conversations_of(principal.user_id, limit, cursor))
        return ConversationPage(items=[ConversationOut.model_validate(c.frame()) for c in found], next_cursor=next_cursor)

    def messages(self, principal: Principal, conversation_id: str, limit: int, cursor: str | None) -> MessagePage:
        conversation = self._chat.get_conversation(conversation_id)
        if conversation is None or not (principal.is_admin or conversation.client_id == principal.user_id):
            raise errors.NotFoundError("No such conversation.")
        found, next_cursor = self._chat.messages(conversation_id, limit, cursor)
        return MessagePage(items=[message_out(m) for m in found], next_cursor=next_cursor)

    # --- internals --------------------------------------------------------------------

    def _set_status(self, conversation: Conversation, status: str, admin_id: str | None) -> Conversation:
        """The change, unless another one came first (a closed conversation is never reopened)."""
        try:
            return self._chat.set_status(conversation, status, admin_id)
        except StatusChangedError:
            raise errors.ConflictError("The conversation changed meanwhile (closed or taken over); "
                                       "look at it again.") from None

    def _escalate(self, conversation: Conversation) -> None:
        conversation = self._set_status(conversation, "escalated", None)
        self._status_frame(conversation)
        self._post(conversation, "system", "system", ESCALATED_NOTE)
        logger.info("chat escalated", extra={"conversation_id": conversation.id})

    def _post(self, conversation: Conversation, sender_id: str, kind: SenderKind, text: str) -> Message:
        message = self._chat.add_message(conversation.id, sender_id, kind, text)
        self._chat.touch(conversation)
        self._frame(conversation, {"type": "chat.message", "message": message_out(message).model_dump()})
        return message

    def _status_frame(self, conversation: Conversation) -> None:
        self._frame(conversation, {"type": "chat.conversation", "conversation": conversation.frame()})

    def _frame(self, conversation: Conversation, frame: dict[str, Any]) -> None:
        self._pusher.to_users([conversation.client_id], frame, admins=True)

    def _by_id(self, conversation_id: str) -> Conversation:
        conversation = self._chat.get_conversation(conversation_id)
        if conversation is None:
            raise errors.NotFoundError("No such conversation.")
        return conversation

    def _conversation_of(self, principal: Principal, conversation_id: str | None) -> Conversation:
        """A client's open conversation, or (admins) the named one."""
        if principal.is_admin:
            if not conversation_id:
                raise errors.ValidationError("conversation_id is required.",
                                             [errors.FieldError("conversation_id", "required for admins")])
            return self._by_id(conversation_id)
        conversation = self._chat.open_conversation(principal.user_id)
        if conversation is None or (conversation_id and conversation_id != conversation.id):
            raise errors.NotFoundError("No such conversation.")
        return conversation
