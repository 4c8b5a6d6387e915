"""The identity context's use cases through in-memory fakes: sign-in and its throttles, sessions that
end with a role or password change, the last admin, the events each change announces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import errors
from chalicelib.errors import Principal
from chalicelib.identity.models import CreateUserRequest, LoginRequest, RegisterRequest, UpdateUserRequest
from chalicelib.identity.service import IdentityService
from chalicelib.settings import get_settings
from tests.harness import FAST_HASHING
from tests.unit.fakes import InMemoryThrottle, InMemoryUsers, RecordingEvents

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A signing secret, cheap hashing and small throttle limits; nothing read from a data folder."""
    for name in ("EMS_ARGON2_MEMORY_KIB", "EMS_ARGON2_TIME_COST", "EMS_ARGON2_PARALLELISM"):
        monkeypatch.setenv(name, FAST_HASHING[name])
    monkeypatch.setenv("EMS_JWT_SECRET", "unit-test-secret-" + "x" * 32)
    monkeypatch.setenv("EMS_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("EMS_LOGIN_MAX_FAILURES_PER_USER_HOUR", "6")
    monkeypatch.setenv("EMS_LOGIN_MAX_FAILURES_PER_SOURCE", "8")
    monkeypatch.setenv("EMS_REGISTER_MAX_PER_SOURCE_HOUR", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def users() -> InMemoryUsers:
    return InMemoryUsers()


@pytest.fixture
def events() -> RecordingEvents:
    return RecordingEvents()


@pytest.fixture
def identity(users: InMemoryUsers, events: RecordingEvents) -> IdentityService:
    return IdentityService(repository=users, throttle=InMemoryThrottle(), events=events)


def make(identity: IdentityService, username: str, role: str = "client") -> str:
    return identity.create_user(CreateUserRequest(username=username, password=PASSWORD, role=role)).id


def sign_in(identity: IdentityService, username: str, password: str = PASSWORD, source: str = "10.0.0.1") -> str:
    return identity.login(LoginRequest(username=username, password=password), source).access_token


def test_a_token_names_the_user_with_their_current_role(identity: IdentityService) -> None:
    user_id = make(identity, "ada")
    principal = identity.authenticate(sign_in(identity, "ADA "))  # usernames ignore case and spaces

    assert principal == Principal(user_id, "ada", "client")
    with pytest.raises(errors.UnauthorizedError):
        sign_in(identity, "ada", "wrong password")
    with pytest.raises(errors.UnauthorizedError):
        sign_in(identity, "nobody")


def test_a_role_change_or_a_password_reset_ends_every_earlier_session(
    identity: IdentityService, events: RecordingEvents
) -> None:
    make(identity, "root", "admin")
    user_id = make(identity, "ada", "admin")
    token = sign_in(identity, "ada")
    started = identity.authenticate(token)
    assert started.is_admin

    identity.update_user(user_id, UpdateUserRequest(role="client"))

    with pytest.raises(errors.UnauthorizedError, match="session has ended"):
        identity.authenticate(token)
    assert identity.current(user_id, session_start=0.0) is None  # an open socket of before
    assert events.types()[-2:] == ["user.updated", "user.sessions_revoked"]
    fresh = sign_in(identity, "ada")
    assert identity.authenticate(fresh).role == "client"

    identity.update_user(user_id, UpdateUserRequest(password="another good password"))
    with pytest.raises(errors.UnauthorizedError):
        identity.authenticate(fresh)
    assert events.types()[-1] == "user.sessions_revoked"
    # a change of name only keeps the sessions
    latest = sign_in(identity, "ada", "another good password")
    identity.update_user(user_id, UpdateUserRequest(name="Ada L."))
    assert identity.authenticate(latest).user_id == user_id


def test_sign_out_ends_the_users_sessions(identity: IdentityService, events: RecordingEvents) -> None:
    make(identity, "ada")
    token = sign_in(identity, "ada")
    identity.logout(identity.authenticate(token))
    with pytest.raises(errors.UnauthorizedError):
        identity.authenticate(token)
    assert events.types()[-1] == "user.sessions_revoked"


def test_guesses_from_one_source_are_throttled_before_the_password_is_checked(identity: IdentityService) -> None:
    make(identity, "ada")
    for _ in range(3):
        with pytest.raises(errors.UnauthorizedError):
            sign_in(identity, "ada", "guess", source="attacker")
    with pytest.raises(errors.ThrottledError) as throttled:
        sign_in(identity, "ada", PASSWORD, source="attacker")  # even the right password waits
    assert throttled.value.retry_after_s >= 1
    # the owner, from elsewhere, is not locked out by it
    assert sign_in(identity, "ada", source="home")


def test_a_success_frees_the_sources_attempts(identity: IdentityService) -> None:
    make(identity, "ada")
    for _ in range(2):
        with pytest.raises(errors.UnauthorizedError):
            sign_in(identity, "ada", "typo")
    sign_in(identity, "ada")
    for _ in range(2):
        with pytest.raises(errors.UnauthorizedError):
            sign_in(identity, "ada", "typo")
    assert sign_in(identity, "ada")


def test_failures_across_sources_and_usernames_have_their_own_larger_limits(identity: IdentityService) -> None:
    make(identity, "ada")
    # many sources against one account: the account's limit (6) slows them all down
    for n in range(6):
        with pytest.raises(errors.UnauthorizedError):
            sign_in(identity, "ada", "guess", source=f"bot-{n}")
    with pytest.raises(errors.ThrottledError):
        sign_in(identity, "ada", "guess", source="bot-new")
    # one source against many usernames: the source's limit (8)
    for n in range(8):
        with pytest.raises(errors.UnauthorizedError):
            sign_in(identity, f"user{n}", "guess", source="sprayer")
    with pytest.raises(errors.ThrottledError):
        sign_in(identity, "someone", "guess", source="sprayer")


def test_registration_is_limited_per_source_and_usernames_are_unique(identity: IdentityService) -> None:
    identity.register(RegisterRequest(username="ada", password=PASSWORD), "10.0.0.9")
    with pytest.raises(errors.ConflictError):
        identity.register(RegisterRequest(username="Ada", password=PASSWORD), "10.0.0.9")
    with pytest.raises(errors.ThrottledError):
        identity.register(RegisterRequest(username="bob", password=PASSWORD), "10.0.0.9")
    assert identity.register(RegisterRequest(username="bob", password=PASSWORD), "10.0.0.10").role == "client"


def test_the_last_admin_can_be_neither_demoted_nor_deleted(identity: IdentityService, events: RecordingEvents) -> None:
    root = make(identity, "root", "admin")
    with pytest.raises(errors.ConflictError):
        identity.update_user(root, UpdateUserRequest(role="client"))
    with pytest.raises(errors.ConflictError):
        identity.delete_user(root)
    second = make(identity, "second", "admin")
    identity.delete_user(root)
    assert not identity.exists(root) and identity.exists(second)
    assert events.types()[-1] == "user.deleted"


def test_a_client_reads_only_itself(identity: IdentityService) -> None:
    ada, bob = make(identity, "ada"), make(identity, "bob")
    me = Principal(ada, "ada", "client")
    assert identity.get_user(me, ada).username == "ada"
    with pytest.raises(errors.NotFoundError):
        identity.get_user(me, bob)
    assert [u.username for u in identity.list_users(10, None, "bo").items] == ["bob"]
