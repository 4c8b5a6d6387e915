"""Identity's use cases: registration, sign-in, the shared token check, user administration.

Every change announces a user event on the identity topic. A user's profile, username and the
change's events are written in one transaction (the events into the outbox), so neither the
profile nor the claim exists without the other, and no change stands without its events: they are
published at once, or by the outbox relay if this function dies first or the bus is down.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace

from chalicelib import errors
from chalicelib.errors import Principal
from chalicelib.identity import passwords, tokens
from chalicelib.identity.domain import Account, Throttle, UserRepository, username_key
from chalicelib.identity.models import (
    ChangePasswordRequest,
    CreateUserRequest,
    LoginRequest,
    LoginResponse,
    RegisterRequest,
    UpdateMeRequest,
    UpdateUserRequest,
    User,
    UserOut,
    UserPage,
)
from chalicelib.observability import logger
from chalicelib.platform import outbox
from chalicelib.platform.publisher import Publisher, SnsPublisher
from chalicelib.settings import get_settings

TOPIC = "identity-events"
_INVALID_LOGIN = "The username or password is wrong."


def _throttled(message: str, wait_s: float) -> errors.ThrottledError:
    return errors.ThrottledError(message, retry_after_s=max(int(wait_s + 0.999), 1))


class IdentityService:
    """The identity context. Its ports are given: where accounts and throttle windows are kept and
    how events go out (DynamoDB and SNS unless given)."""

    def __init__(self, publisher: Publisher | None = None, repository: UserRepository | None = None,
                 throttle: Throttle | None = None, events: outbox.EventDelivery | None = None) -> None:
        from chalicelib.identity.repository import DynamoThrottle, DynamoUsers

        self._users: UserRepository = repository or DynamoUsers()
        self._throttle: Throttle = throttle or DynamoThrottle()
        self._outbox: outbox.EventDelivery = events or outbox.Outbox(publisher or SnsPublisher())

    # --- the shared check -------------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """The caller behind an access token; 401 if it is bad, expired, revoked or orphaned."""
        claims = tokens.verify(token)
        item = self._users.get(claims.user_id)
        if item is None:
            raise errors.UnauthorizedError("The account no longer exists.")
        if claims.issued_at < float(item.tokens_valid_after):
            raise errors.UnauthorizedError("The session has ended; sign in again.")
        # The stored role wins, so a change of role takes effect at once.
        return Principal(user_id=item.id, username=item.username, role=item.role, name=item.name)

    def current(self, user_id: str, session_start: float) -> Principal | None:
        """The user as they are now, for a session (an open socket) begun at `session_start`;
        None when the user is gone or that session has ended (sign-out, password, role change)."""
        item = self._users.get(user_id)
        if item is None or session_start < float(item.tokens_valid_after):
            return None
        return Principal(user_id=item.id, username=item.username, role=item.role, name=item.name)

    # --- self-service -----------------------------------------------------------------

    def register(self, request: RegisterRequest, source: str = "unknown") -> User:
        settings = get_settings()
        wait_s = self._throttle.take_slot(f"register:{source}", settings.register_max_per_source_hour, 3600, time.time())
        if wait_s > 0:
            raise _throttled("Too many accounts created from this address; try again later.", wait_s)
        return self._create(request.username, request.password, "client", request.name, request.email)

    def login(self, request: LoginRequest, source: str = "unknown") -> LoginResponse:
        """Sign in, throttled before the password is hashed (OWASP ASVS V2.2).

        Each attempt takes a slot of its (source, username) pair first, atomically, so parallel
        guesses cannot pass the limit; a success frees the pair's slots. Failures also count
        against the username from every source and against the source for every username, with
        larger limits: a guesser is slowed down where it guesses, while the owner, signing in
        from elsewhere, is not locked out by it.
        """
        settings = get_settings()
        key = username_key(request.username)
        now = time.time()
        pair, account, source_key = f"login:{source}|{key}", f"login-user:{key}", f"login-source:{source}"
        wait_s = max(self._throttle.slots_wait(account, settings.login_max_failures_per_user_hour, now),
                     self._throttle.slots_wait(source_key, settings.login_max_failures_per_source, now))
        if wait_s <= 0:
            wait_s = self._throttle.take_slot(pair, settings.login_max_failures, settings.login_lockout_s, now)
        if wait_s > 0:
            raise _throttled("Too many failed sign-ins; try again later.", wait_s)
        item = self._users.find_by_username(request.username)
        if not passwords.verify(item.password_hash if item else None, request.password) or item is None:
            self._throttle.take_slot(account, settings.login_max_failures_per_user_hour, 3600, now)
            self._throttle.take_slot(source_key, settings.login_max_failures_per_source, settings.login_lockout_s, now)
            raise errors.UnauthorizedError(_INVALID_LOGIN)
        self._throttle.clear_slots(pair)
        if passwords.needs_rehash(item.password_hash):
            self._rehash(item, request.password)
        token, expires_in = tokens.issue(item.id, item.username, item.role)
        return LoginResponse(access_token=token, expires_in=expires_in, user=item.user().out())

    def me(self, principal: Principal) -> User:
        return self._get(principal.user_id)

    def update_me(self, principal: Principal, request: UpdateMeRequest) -> User:
        changes = request.model_dump(exclude_unset=True)
        return self._update(principal.user_id, changes)

    def change_password(self, principal: Principal, request: ChangePasswordRequest) -> None:
        item = self._item(principal.user_id)
        if not passwords.verify(item.password_hash, request.current_password):
            raise errors.ValidationError(
                "The current password is wrong.", [errors.FieldError("current_password", "does not match")]
            )
        self._update(principal.user_id, {"password": request.new_password})

    def logout(self, principal: Principal) -> None:
        """Every token of the user issued until now stops working, and their sockets close."""
        item = self._item(principal.user_id)
        entries = [_sessions_revoked(item)]
        self._users.revoke_tokens(principal.user_id, tokens.sessions_end_now(), entries)
        self._outbox.deliver(entries)

    # --- administration ---------------------------------------------------------------

    def list_users(self, limit: int, cursor: str | None, query: str | None) -> UserPage:
        accounts, next_cursor = self._users.list_page(limit, cursor, query)
        return UserPage(items=[a.user().out() for a in accounts], next_cursor=next_cursor)

    def create_user(self, request: CreateUserRequest) -> User:
        return self._create(request.username, request.password, request.role, request.name, request.email)

    def get_user(self, principal: Principal, user_id: str) -> User:
        if not principal.is_admin and principal.user_id != user_id:
            raise errors.NotFoundError("No such user.")
        return self._get(user_id)

    def update_user(self, user_id: str, request: UpdateUserRequest) -> User:
        return self._update(user_id, request.model_dump(exclude_unset=True))

    def delete_user(self, user_id: str) -> None:
        item = self._item(user_id)
        entries = [outbox.entry(TOPIC, "user.deleted", item.id, int(item.version) + 1,
                                {"id": item.id, "username": item.username})]
        self._users.delete(item, entries)
        self._outbox.deliver(entries)

    def exists(self, user_id: str) -> bool:
        """Whether a user exists now (read by other contexts, strongly consistent)."""
        return self._users.get(user_id) is not None

    def ids_by_username(self, usernames: Sequence[str]) -> dict[str, str]:
        """The ids of the users with these usernames (matched without case), by the names as given
        (read by other contexts; unknown names are left out)."""
        found = self._users.ids_by_username(usernames)
        return {name: found[username_key(name)] for name in usernames if username_key(name) in found}

    # --- internals --------------------------------------------------------------------

    def _create(self, username: str, password: str, role: str, name: str, email: str | None) -> User:
        account = Account(
            str(uuid.uuid4()),
            username=username,
            role=role,
            name=name,
            email=email,
            password_hash=passwords.hash_password(password),
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        user = account.user()
        entries = [outbox.entry(TOPIC, "user.created", user.id, user.version, _public(user))]
        self._users.create(account, entries)
        self._outbox.deliver(entries)
        logger.info("user created", extra={"user_id": user.id, "role": role})
        return user

    def _update(self, user_id: str, changes: dict[str, object]) -> User:
        old = self._item(user_id)
        if not changes:
            return old.user()
        fields: dict[str, object] = {"version": old.version + 1}
        if changes.get("username"):
            fields["username"] = str(changes["username"])
        if "name" in changes and changes["name"] is not None:
            fields["name"] = str(changes["name"])
        if "email" in changes:
            fields["email"] = changes["email"]
        if changes.get("role"):
            fields["role"] = str(changes["role"])
        if changes.get("password"):
            fields["password_hash"] = passwords.hash_password(str(changes["password"]))
        # A new password or a new role ends every session opened before: a token, a socket, or the
        # admins' feed must not outlive what allowed it.
        sessions_end = bool(changes.get("password")) or fields.get("role", old.role) != old.role
        if sessions_end:
            fields["tokens_valid_after"] = tokens.sessions_end_now()
        new = replace(old, **fields)  # type: ignore[arg-type]
        user = new.user()
        entries = [outbox.entry(TOPIC, "user.updated", user.id, user.version, _public(user))]
        if sessions_end:
            entries.append(_sessions_revoked(new))
        self._users.replace(old, new, entries)
        self._outbox.deliver(entries)
        return user

    def _rehash(self, item: Account, password: str) -> None:
        new = replace(item, password_hash=passwords.hash_password(password), version=item.version + 1)
        try:
            self._users.replace(item, new, ())
        except errors.ConflictError:
            logger.info("password rehash skipped: the user changed meanwhile")

    def _item(self, user_id: str) -> Account:
        item = self._users.get(user_id)
        if item is None:
            raise errors.NotFoundError("No such user.")
        return item

    def _get(self, user_id: str) -> User:
        return self._item(user_id).user()


def _sessions_revoked(item: Account) -> outbox.Entry:
    """Tells real time to close the user's open sockets (an expired token does not close one)."""
    return outbox.entry(TOPIC, "user.sessions_revoked", item.id, int(item.version), {"id": item.id})


def _public(user: User) -> dict[str, object]:
    out: UserOut = user.out()
    return out.model_dump(mode="json")
