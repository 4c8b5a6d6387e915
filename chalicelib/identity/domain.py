"""The identity context's domain: an account (a user with their password hash), and its ports.

Plain values, no I/O: the service works on these; repositories (DynamoDB in production,
dictionaries in unit tests) keep them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from chalicelib.identity.models import User
from chalicelib.platform import outbox


def username_key(username: str) -> str:
    """What makes a username unique: case and surrounding spaces do not count."""
    return username.strip().lower()


@dataclass(frozen=True)
class Account:
    """A stored user. `version` orders its changes; tokens issued before `tokens_valid_after` (epoch
    seconds) are no longer valid (sign-out, a new password, a new role)."""

    id: str
    username: str
    role: str
    name: str
    email: str | None
    password_hash: str
    created_at: str
    version: int = 1
    tokens_valid_after: float = 0.0

    @property
    def username_key(self) -> str:
        return username_key(self.username)

    def user(self) -> User:
        return User(id=self.id, username=self.username, role=self.role, name=self.name, email=self.email,
                    created_at=self.created_at, version=self.version, tokens_valid_after=self.tokens_valid_after)


class UserRepository(Protocol):
    """Where accounts are kept. Each change is stored with its events (`entries`, staged for the outbox)
    in one transaction. ConflictError: a username that is taken, an account changed meanwhile (its
    version), or a change that would leave no admin."""

    def get(self, user_id: str) -> Account | None: ...

    def find_by_username(self, username: str) -> Account | None: ...

    def ids_by_username(self, usernames: Sequence[str]) -> dict[str, str]:
        """The ids of the users with these usernames, by username without case (unknown ones left out)."""
        ...

    def list_page(self, limit: int, cursor: str | None, query: str | None) -> tuple[list[Account], str | None]:
        """A page of accounts by username without case; with `query`, those whose username starts
        with it (without case). A cursor not from this listing is a ValidationError."""
        ...

    def create(self, account: Account, entries: Sequence[outbox.Entry]) -> None: ...

    def replace(self, old: Account, new: Account, entries: Sequence[outbox.Entry]) -> None: ...

    def delete(self, account: Account, entries: Sequence[outbox.Entry]) -> None: ...

    def revoke_tokens(self, user_id: str, now: float, entries: Sequence[outbox.Entry]) -> None:
        """Tokens issued before `now` stop working."""
        ...


class Throttle(Protocol):
    """Counted windows of attempts, each named by a key (atomic under concurrency)."""

    def take_slot(self, key: str, limit: int, window_s: int, now: float) -> float:
        """Take one of `limit` slots of the key's current window (of `window_s`); 0.0 when taken,
        else the seconds until the window ends."""
        ...

    def slots_wait(self, key: str, limit: int, now: float) -> float:
        """Seconds until the key has a slot again (0.0: it has one now)."""
        ...

    def clear_slots(self, key: str) -> None: ...
