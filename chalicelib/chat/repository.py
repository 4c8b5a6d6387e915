"""Chat's tables: conversations (one open per client) and their messages; the only code that
touches them, returning the domain's values (see ChatRepository)."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import replace
from functools import partial
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib import names
from chalicelib.chat.domain import STATUS_ORDER, Conversation, Message, StatusChangedError
from chalicelib.platform.conditions import applied, counted_in_window
from chalicelib.platform.pagination import bad_cursor, decode_cursor, encode_cursor
from chalicelib.platform.persistence import Item

_MAX_CREATE_ATTEMPTS = 100


class ByClient(GlobalSecondaryIndex["ConversationItem"]):
    class Meta:
        index_name = "by_client"
        projection = AllProjection()

    client_id = UnicodeAttribute(hash_key=True)
    updated_at = UnicodeAttribute(range_key=True)


class ByStatus(GlobalSecondaryIndex["ConversationItem"]):
    class Meta:
        index_name = "by_status"
        projection = AllProjection()

    status = UnicodeAttribute(hash_key=True)
    updated_at = UnicodeAttribute(range_key=True)


class ConversationItem(Item):
    class Meta:
        table_name = names.resource_name("conversations")

    id = UnicodeAttribute(hash_key=True)
    client_id = UnicodeAttribute()
    status = UnicodeAttribute()  # bot | escalated | taken_over | closed
    admin_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    client_name = UnicodeAttribute(null=True)
    rate_window = UnicodeAttribute(null=True)  # the current window of the client's messages
    rate_count = NumberAttribute(null=True)  # messages counted in it
    by_client = ByClient()
    by_status = ByStatus()


class MessageItem(Item):
    class Meta:
        table_name = names.resource_name("chat-messages")

    conversation_id = UnicodeAttribute(hash_key=True)
    message_id = UnicodeAttribute(range_key=True)
    sender_id = UnicodeAttribute()
    sender_kind = UnicodeAttribute()  # client | rule | ai | admin | system
    text = UnicodeAttribute()
    created_at = UnicodeAttribute()
    read_by = UnicodeSetAttribute(null=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _conversation(item: ConversationItem) -> Conversation:
    return Conversation(item.id, item.client_id, item.status, item.admin_id, item.created_at, item.updated_at,
                        item.client_name)


def _message(item: MessageItem) -> Message:
    return Message(item.message_id, item.conversation_id, item.sender_id, item.sender_kind, item.text,
                   item.created_at, frozenset(item.read_by or ()))


def new_message_id() -> str:
    """Sorts by time: milliseconds since the epoch, then randomness."""
    return f"{int(time.time() * 1000):013d}-{secrets.token_hex(4)}"


class DynamoChat:
    """The chat context's tables (see ChatRepository for each method's contract)."""

    def open_conversation(self, client_id: str) -> Conversation | None:
        for item in ConversationItem.by_client.query(client_id, scan_index_forward=False):
            if item.status != "closed":
                return _conversation(item)
        return None

    def open_or_create_conversation(self, client_id: str, client_name: str | None = None
                                    ) -> tuple[Conversation, bool]:
        """The next conversation is made with a conditional put of its number's id: two first
        messages racing from two sockets end in one conversation."""
        known = [_conversation(i) for i in ConversationItem.by_client.query(client_id, scan_index_forward=False)]
        for conversation in known:
            if conversation.status != "closed":
                return conversation, False
        number = len(known)
        for _ in range(_MAX_CREATE_ATTEMPTS):
            now = _now()
            item = ConversationItem(f"c-{client_id}-{number}", client_id=client_id, status="bot", admin_id=None,
                                    created_at=now, updated_at=now, client_name=client_name)
            if applied(partial(item.save, condition=ConversationItem.id.does_not_exist())):
                return _conversation(item), True
            # Made a moment ago by a racing message, or an older one the index did not show yet.
            existing = self.get_conversation(item.id)
            if existing is not None and existing.status != "closed":
                return existing, False
            number += 1
        raise RuntimeError(f"no free conversation number for client {client_id}")

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        try:
            return _conversation(ConversationItem.get(conversation_id, consistent_read=True))
        except DoesNotExist:
            return None

    def set_status(self, conversation: Conversation, status: str, admin_id: str | None) -> Conversation:
        item = ConversationItem(conversation.id)
        now = _now()
        assigned = ConversationItem.admin_id.set(admin_id) if admin_id else ConversationItem.admin_id.remove()
        if not applied(lambda: item.update(
                actions=[ConversationItem.status.set(status), assigned, ConversationItem.updated_at.set(now)],
                condition=ConversationItem.id.exists() & (ConversationItem.status == conversation.status))):
            raise StatusChangedError(conversation.id)
        return replace(conversation, status=status, admin_id=admin_id, updated_at=now)

    def count_client_message(self, conversation: Conversation, window: str, limit: int) -> bool:
        item = ConversationItem(conversation.id)
        return counted_in_window(
            lambda: item.update(
                actions=[ConversationItem.rate_count.add(1)],
                condition=(ConversationItem.rate_window == window) & (ConversationItem.rate_count < limit)),
            lambda: item.update(
                actions=[ConversationItem.rate_window.set(window), ConversationItem.rate_count.set(1)],
                condition=ConversationItem.id.exists()
                & (ConversationItem.rate_window.does_not_exist() | (ConversationItem.rate_window != window))),
        )

    def touch(self, conversation: Conversation) -> None:
        ConversationItem(conversation.id).update(actions=[ConversationItem.updated_at.set(_now())])

    def add_message(self, conversation_id: str, sender_id: str, sender_kind: str, text: str) -> Message:
        item = MessageItem(conversation_id, new_message_id(), sender_id=sender_id, sender_kind=sender_kind,
                           text=text, created_at=_now())
        item.save()
        return _message(item)

    def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        try:
            return _message(MessageItem.get(conversation_id, message_id, consistent_read=True))
        except DoesNotExist:
            return None

    def mark_read(self, conversation_id: str, message_id: str, reader_id: str) -> None:
        MessageItem(conversation_id, message_id).update(actions=[MessageItem.read_by.add({reader_id})],
                                                        condition=MessageItem.message_id.exists())

    def messages(self, conversation_id: str, limit: int, cursor: str | None) -> tuple[list[Message], str | None]:
        results = MessageItem.query(conversation_id, limit=limit, page_size=limit, consistent_read=True,
                                    last_evaluated_key=decode_cursor(cursor, {"conversation_id", "message_id"}))
        found = [_message(i) for i in results]
        return found, encode_cursor(results.last_evaluated_key)

    def conversations_of(self, client_id: str, limit: int, cursor: str | None
                         ) -> tuple[list[Conversation], str | None]:
        start = decode_cursor(cursor, {"id", "client_id", "updated_at"})
        if start is not None and start["client_id"]["S"] != client_id:
            raise bad_cursor()
        results = ConversationItem.by_client.query(client_id, scan_index_forward=False, limit=limit,
                                                   page_size=limit, last_evaluated_key=start)
        found = [_conversation(i) for i in results]
        return found, encode_cursor(results.last_evaluated_key)

    def all_conversations(self, limit: int, cursor: str | None) -> tuple[list[Conversation], str | None]:
        status, start = decode_status_cursor(cursor)
        found: list[Conversation] = []
        for current in STATUS_ORDER[STATUS_ORDER.index(status):]:
            results = ConversationItem.by_status.query(current, scan_index_forward=False, limit=limit - len(found),
                                                       page_size=limit - len(found), last_evaluated_key=start)
            found.extend(_conversation(i) for i in results)
            last = results.last_evaluated_key
            if last is not None:
                return found, f"{current}.{encode_cursor(last)}"
            start = None
            if len(found) >= limit:
                following = STATUS_ORDER.index(current) + 1
                return found, f"{STATUS_ORDER[following]}." if following < len(STATUS_ORDER) else None
        return found, None


def decode_status_cursor(cursor: str | None) -> tuple[str, dict[str, Any] | None]:
    """An admins' listing cursor `<status>.<where that status goes on>`: (status, start key); 422 for any other."""
    status, _, rest = (cursor or f"{STATUS_ORDER[0]}.").partition(".")
    if status not in STATUS_ORDER:
        raise bad_cursor()
    start = decode_cursor(rest, {"id", "status", "updated_at"}) if rest else None
    if start is not None and start["status"]["S"] != status:
        raise bad_cursor()
    return status, start
