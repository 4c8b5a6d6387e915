"""Identity's tables; the only code that touches them.

A user is two items written in one transaction: the profile (`users`, by id) and the
username claim (`usernames`, by lower-cased name) that makes names unique even under
concurrent registration. The number of admins is a counter item changed in the same
transactions, so that "not the last admin" holds under concurrency too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex

from chalicelib import errors, names
from chalicelib.identity.domain import Account, username_key
from chalicelib.platform import outbox, persistence
from chalicelib.platform.conditions import counted_in_window
from chalicelib.platform.pagination import bad_cursor, decode_cursor, encode_cursor
from chalicelib.platform.transactions import LabelledWrites, labelled

ADMIN_COUNTER_ID = "#admins"


class ByUsername(GlobalSecondaryIndex["UserItem"]):
    """Every user by username without case (sparse: the admin counter is not listed)."""

    class Meta:
        index_name = "by_username"
        projection = AllProjection()

    listing = UnicodeAttribute(hash_key=True)
    username_key = UnicodeAttribute(range_key=True)


LISTED = "all"


class UserItem(persistence.Item):
    class Meta:
        table_name = names.resource_name("users")

    id = UnicodeAttribute(hash_key=True)
    username = UnicodeAttribute()
    username_key = UnicodeAttribute()
    role = UnicodeAttribute()
    name = UnicodeAttribute(default="")
    email = UnicodeAttribute(null=True)
    password_hash = UnicodeAttribute()
    created_at = UnicodeAttribute()
    version = NumberAttribute(default=1)
    tokens_valid_after = NumberAttribute(default=0)
    listing = UnicodeAttribute(null=True)  # LISTED: every user is in the by_username index
    by_username = ByUsername()


class AdminCounter(persistence.Item):
    class Meta:
        table_name = names.resource_name("users")

    id = UnicodeAttribute(hash_key=True)
    admins = NumberAttribute(default=0, attr_name="count")


class UsernameClaim(persistence.Item):
    class Meta:
        table_name = names.resource_name("usernames")

    username_key = UnicodeAttribute(hash_key=True)
    user_id = UnicodeAttribute()


class LoginAttempts(persistence.Item):
    """A throttle's window: `failures` slots taken until `expires_at` (the key names the throttle:
    a source and username, a username, a source)."""

    class Meta:
        table_name = names.resource_name("login-attempts")

    username_key = UnicodeAttribute(hash_key=True)
    failures = NumberAttribute(default=0)
    expires_at = NumberAttribute()


class _Labels:
    """What each write of a transaction stands for, to name the one whose condition failed."""

    CLAIM = "claim"
    VERSION = "version"
    LAST_ADMIN = "last_admin"
    PLAIN = "plain"


def _run(build: Callable[[LabelledWrites], None], username: str, entries: Sequence[outbox.Entry]) -> None:
    """Run the writes `build` adds, with the change's events, as one transaction."""
    with labelled(partial(_conflict, username), _Labels.PLAIN) as writes:
        build(writes)
        writes.stage(entries)


def _conflict(username: str, failed: set[str]) -> errors.ConflictError:
    if _Labels.LAST_ADMIN in failed:
        return errors.ConflictError("The last admin cannot be removed or demoted.")
    if _Labels.CLAIM in failed:
        return errors.ConflictError(f"The username '{username}' is taken.",
                                    [errors.FieldError("username", "already taken")])
    return errors.ConflictError("The user was changed meanwhile; reload and try again.")


def _item(account: Account) -> UserItem:
    return UserItem(
        account.id, username=account.username, username_key=account.username_key, role=account.role,
        name=account.name, email=account.email, password_hash=account.password_hash, created_at=account.created_at,
        listing=LISTED, version=account.version,
        tokens_valid_after=account.tokens_valid_after,
    )


def _account(item: UserItem) -> Account:
    return Account(
        id=item.id, username=item.username, role=item.role, name=item.name, email=item.email,
        password_hash=item.password_hash, created_at=item.created_at, version=int(item.version),
        tokens_valid_after=float(item.tokens_valid_after),
    )


class DynamoUsers:
    """Identity's user tables (see UserRepository)."""

    def create(self, account: Account, entries: Sequence[outbox.Entry]) -> None:
        """Write the profile and claim the username, or ConflictError if the name is taken."""

        def build(w: LabelledWrites) -> None:
            w.save(UsernameClaim(account.username_key, user_id=account.id), _Labels.CLAIM,
                   condition=UsernameClaim.username_key.does_not_exist())
            w.save(_item(account), _Labels.VERSION, condition=UserItem.id.does_not_exist())
            if account.role == "admin":
                w.update(AdminCounter(ADMIN_COUNTER_ID), _Labels.PLAIN, [AdminCounter.admins.add(1)])

        _run(build, account.username, entries)

    def get(self, user_id: str) -> Account | None:
        if user_id.startswith("#"):
            return None
        try:
            return _account(UserItem.get(user_id, consistent_read=True))
        except DoesNotExist:
            return None

    def find_by_username(self, username: str) -> Account | None:
        try:
            claim = UsernameClaim.get(username_key(username), consistent_read=True)
        except DoesNotExist:
            return None
        return self.get(claim.user_id)

    def ids_by_username(self, usernames: Sequence[str]) -> dict[str, str]:
        keys = sorted({username_key(u) for u in usernames})
        return {claim.username_key: claim.user_id for claim in UsernameClaim.batch_get(keys)} if keys else {}

    def replace(self, old: Account, new: Account, entries: Sequence[outbox.Entry]) -> None:
        """Store `new` over `old` (same id) if nobody changed it meanwhile; moves the username claim."""
        admin_delta = int(new.role == "admin") - int(old.role == "admin")

        def build(w: LabelledWrites) -> None:
            w.save(_item(new), _Labels.VERSION, condition=UserItem.version == old.version)
            if new.username_key != old.username_key:
                w.delete(UsernameClaim(old.username_key), _Labels.VERSION, condition=UsernameClaim.user_id == old.id)
                w.save(UsernameClaim(new.username_key, user_id=new.id), _Labels.CLAIM,
                       condition=UsernameClaim.username_key.does_not_exist())
            if admin_delta:
                w.update(AdminCounter(ADMIN_COUNTER_ID), _Labels.LAST_ADMIN, [AdminCounter.admins.add(admin_delta)],
                         condition=(AdminCounter.admins > 1) if admin_delta < 0 else None)

        _run(build, new.username, entries)

    def delete(self, account: Account, entries: Sequence[outbox.Entry]) -> None:
        """Remove profile and claim together; an admin only while another admin remains."""

        def build(w: LabelledWrites) -> None:
            w.delete(UserItem(account.id), _Labels.VERSION, condition=UserItem.version == account.version)
            w.delete(UsernameClaim(account.username_key), _Labels.VERSION,
                     condition=UsernameClaim.user_id == account.id)
            if account.role == "admin":
                w.update(AdminCounter(ADMIN_COUNTER_ID), _Labels.LAST_ADMIN, [AdminCounter.admins.add(-1)],
                         condition=AdminCounter.admins > 1)

        _run(build, account.username, entries)

    def admin_count(self) -> int:
        try:
            return int(AdminCounter.get(ADMIN_COUNTER_ID, consistent_read=True).admins)
        except DoesNotExist:
            return 0

    def revoke_tokens(self, user_id: str, now: float, entries: Sequence[outbox.Entry]) -> None:
        def build(w: LabelledWrites) -> None:
            w.update(UserItem(user_id), _Labels.VERSION, [UserItem.tokens_valid_after.set(now)],
                     condition=UserItem.id.exists())

        _run(build, "", entries)

    def list_page(self, limit: int, cursor: str | None, query: str | None) -> tuple[list[Account], str | None]:
        prefix = username_key(query) if query else ""
        start = decode_cursor(cursor, {"id", "listing", "username_key"})
        if start is not None and (start["listing"]["S"] != LISTED or not start["username_key"]["S"].startswith(prefix)):
            raise bad_cursor()
        results = UserItem.by_username.query(LISTED, UserItem.username_key.startswith(prefix) if prefix else None,
                                             limit=limit, page_size=limit, last_evaluated_key=start)
        items = [_account(i) for i in results]
        return items, encode_cursor(results.last_evaluated_key)


class DynamoThrottle:
    """The sign-in and registration throttles' windows (see Throttle).

    TTL deletes expired items up to two days late, so an item past its `expires_at` is a new window.
    """

    def take_slot(self, key: str, limit: int, window_s: int, now: float) -> float:
        item = LoginAttempts(key)
        if counted_in_window(
            lambda: item.update(actions=[LoginAttempts.failures.add(1)],
                                condition=(LoginAttempts.expires_at > now) & (LoginAttempts.failures < limit)),
            lambda: item.update(actions=[LoginAttempts.failures.set(1),
                                         LoginAttempts.expires_at.set(int(now) + window_s)],
                                condition=LoginAttempts.expires_at.does_not_exist() | (LoginAttempts.expires_at <= now)),
        ):
            return 0.0
        return max(self.slots_wait(key, limit, now), 1.0)

    def slots_wait(self, key: str, limit: int, now: float) -> float:
        try:
            attempts = LoginAttempts.get(key, consistent_read=True)
        except DoesNotExist:
            return 0.0
        if float(attempts.expires_at) <= now or int(attempts.failures) < limit:
            return 0.0
        return float(attempts.expires_at) - now

    def clear_slots(self, key: str) -> None:
        LoginAttempts(key).delete()


def backfill_listing() -> int:
    """List users kept before the list was by username (a one-off step after an upgrade that reads
    every user; a listed one is left alone); how many were listed."""
    return persistence.bring_up(UserItem, UserItem.listing.does_not_exist() & ~UserItem.id.startswith("#"),
                                lambda _: [UserItem.listing.set(LISTED)], lambda item: UserItem.version == item.version)
