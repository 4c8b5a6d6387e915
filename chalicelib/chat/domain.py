"""The chat context's domain: a conversation, its messages, and the ports to where they are kept
and to what answers them.

Plain values, no I/O: the service works on these, a repository (DynamoDB in production, a
dictionary in unit tests) stores them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# The admins' console lists conversations by status, the ones waiting for a human first.
STATUS_ORDER = ("escalated", "taken_over", "bot", "closed")


class StatusChangedError(Exception):
    """The conversation's status is no longer the one the change was decided on."""


@dataclass(frozen=True)
class Conversation:
    """A client's conversation. `status`: bot | escalated | taken_over | closed; a client has at
    most one that is not closed, and a closed one is never reopened."""

    id: str
    client_id: str
    status: str
    admin_id: str | None
    created_at: str
    updated_at: str
    client_name: str | None = None  # the client's name (else username) when it began; None: kept before names were

    def frame(self) -> dict[str, object]:
        return {"id": self.id, "client_id": self.client_id, "client_name": self.client_name, "status": self.status,
                "admin_id": self.admin_id, "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass(frozen=True)
class Message:
    """One message of a conversation. `sender_kind`: client | rule | ai | admin | system; ids sort
    by time, so a conversation's messages in id order are in the order they were sent."""

    id: str
    conversation_id: str
    sender_id: str
    sender_kind: str
    text: str
    created_at: str
    read_by: frozenset[str] = field(default_factory=frozenset)


class Assistant(Protocol):
    """The port that answers a client's question automatically (Gemini in production)."""

    def answer(self, question: str, context: str) -> str:
        """An answer given `context`, the asking client's own account; no answer this time (whatever
        the reason) raises `chalicelib.chat.ai.AiUnavailableError`."""
        ...


class ChatRepository(Protocol):
    """Where conversations and their messages are kept. Pages are `(items, next_cursor)`: pass
    `next_cursor` back for the next page; None means nothing follows (a full page may still be
    followed by an empty one). A cursor that is not one of these is refused with a ValidationError."""

    def open_conversation(self, client_id: str) -> Conversation | None:
        """The client's conversation that is not closed, None when there is none."""
        ...

    def open_or_create_conversation(self, client_id: str, client_name: str | None = None
                                    ) -> tuple[Conversation, bool]:
        """The client's open conversation, made (status `bot`, with the client's name) if there is
        none; True when this call made it. A client's conversations are numbered (`c-<client>-<n>`); two calls racing make one."""
        ...

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        """The conversation as stored now (a consistent read), None when there is no such one."""
        ...

    def set_status(self, conversation: Conversation, status: str, admin_id: str | None) -> Conversation:
        """Move the conversation from the status it was read with to `status`, assigning `admin_id`
        (None: no admin), and mark its activity now; the conversation as it is now. A concurrent
        change in between (a close racing a take-over) raises StatusChangedError, so none is undone."""
        ...

    def count_client_message(self, conversation: Conversation, window: str, limit: int) -> bool:
        """Count one client message in the conversation's current window (e.g. a minute, named by
        `window`); a new window starts at one. False when `limit` were counted in it already.
        Atomic: two sockets sending at once cannot both slip past."""
        ...

    def touch(self, conversation: Conversation) -> None:
        """Mark the conversation's activity now (its `updated_at`, which orders the listings)."""
        ...

    def add_message(self, conversation_id: str, sender_id: str, sender_kind: str, text: str) -> Message:
        """Store a new message, its id after every earlier one of the conversation; the message."""
        ...

    def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        """The message of that conversation, None when it has no such one."""
        ...

    def mark_read(self, conversation_id: str, message_id: str, reader_id: str) -> None:
        """Add the reader to the message's `read_by`; the message must exist (read it first)."""
        ...

    def messages(self, conversation_id: str, limit: int, cursor: str | None) -> tuple[list[Message], str | None]:
        """A page of the conversation's messages, oldest first (by id)."""
        ...

    def conversations_of(self, client_id: str, limit: int, cursor: str | None
                         ) -> tuple[list[Conversation], str | None]:
        """A page of a client's conversations, newest activity first; another client's cursor is
        refused (ValidationError)."""
        ...

    def all_conversations(self, limit: int, cursor: str | None) -> tuple[list[Conversation], str | None]:
        """A page of every conversation, by status (STATUS_ORDER), newest activity first in each; the
        cursor is `<status>.<where that status goes on>` (an unknown status: ValidationError)."""
        ...
