"""The alerts context's use cases through an in-memory inbox: delivery to owners and the admins'
feed, redelivery, who sees what, per-user acknowledgement, a deleted device's alerts, paging.
No endpoint, no process."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from chalicelib import errors
from chalicelib.alerts import service as alert_service
from chalicelib.alerts.domain import ADMIN_FEED
from chalicelib.alerts.models import AlertOut
from chalicelib.alerts.service import AlertService
from chalicelib.errors import Principal
from chalicelib.messages import Alert
from tests.unit.fakes import InMemoryInbox, Push, RecordingPusher

ALICE = Principal("alice", "alice", "client")
BOB = Principal("bob", "bob", "client")
CAROL = Principal("carol", "carol", "client")
ADMIN_1 = Principal("admin-1", "admin-1", "admin")
ADMIN_2 = Principal("admin-2", "admin-2", "admin")
ADMIN_SOCKETS = RecordingPusher.ADMIN_SOCKETS  # open connections of admins, each reached by a push to the admins
DAY = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


class Clock:
    """The service's `dt.datetime.now`, set by the test."""

    def __init__(self) -> None:
        self.now = DAY.replace(hour=12)

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:  # type: ignore[override]
            return clock.now  # type: ignore[return-value]

    monkeypatch.setattr(alert_service, "dt", SimpleNamespace(datetime=Frozen, UTC=dt.UTC))
    return clock


@pytest.fixture
def owners() -> dict[str, set[str]]:
    return {"meter-1": {"alice", "bob"}, "meter-2": {"carol"}}


@pytest.fixture
def existing() -> set[str]:
    return {"meter-1", "meter-2"}


@pytest.fixture
def inbox() -> InMemoryInbox:
    return InMemoryInbox()


@pytest.fixture
def pusher() -> RecordingPusher:
    return RecordingPusher()


@pytest.fixture
def alerts(inbox: InMemoryInbox, pusher: RecordingPusher, owners: dict[str, set[str]], existing: set[str],
           clock: Clock) -> AlertService:
    return AlertService(pusher, owners_of=lambda device_id: frozenset(owners.get(device_id, ())),
                        device_exists=existing.__contains__, inbox=inbox)


def raised(hour: int, device_id: str = "meter-1") -> Alert:
    """The over-consumption alert of a device's hour of DAY, raised at the hour's end."""
    start = DAY.replace(hour=hour)
    return Alert(id=f"{device_id}:{start.isoformat()}", kind="over_consumption", device_id=device_id,
                 device_name="Kitchen", hour_start=start.isoformat(), total_kwh=3.0, max_hourly_kwh=2.5,
                 created_at=(start + dt.timedelta(hours=1)).isoformat(timespec="seconds"))


def listed(alerts: AlertService, who: Principal, unacknowledged: bool = False) -> list[tuple[str, str | None]]:
    """(alert id, acknowledged_at) of the caller's whole listing, in one page."""
    page = alerts.list_for(who, 100, None, unacknowledged)
    assert page.next_cursor is None
    return [(a.id, a.acknowledged_at) for a in page.items]


def ids(alerts: AlertService, who: Principal, unacknowledged: bool = False) -> list[str]:
    return [alert_id for alert_id, _ in listed(alerts, who, unacknowledged)]


def stamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds")


# --- delivery ---------------------------------------------------------------------------


def test_a_delivered_alert_gets_a_copy_per_owner_and_one_in_the_feed_and_reaches_owners_and_admins(
    alerts: AlertService, inbox: InMemoryInbox, pusher: RecordingPusher
) -> None:
    alert = raised(9)

    reached = alerts.deliver(alert)

    assert sorted(inbox.copies) == sorted([("alice", alert.id), ("bob", alert.id), (ADMIN_FEED, alert.id)])
    assert pusher.pushes == [Push(("alice", "bob"), {"type": "alert", "alert": {**alert.model_dump(),
                                                                                "acknowledged_at": None}}, True)]
    assert reached == 2 + ADMIN_SOCKETS
    assert not any(inbox.unpushed(user, alert.id) for user in ("alice", "bob", ADMIN_FEED))
    assert ids(alerts, ALICE) == ids(alerts, BOB) == ids(alerts, ADMIN_1) == [alert.id]
    assert ids(alerts, CAROL) == []


def test_a_redelivered_alert_is_stored_once_and_pushed_only_to_the_inboxes_it_did_not_reach(
    alerts: AlertService, inbox: InMemoryInbox, pusher: RecordingPusher, owners: dict[str, set[str]]
) -> None:
    alert = raised(9)
    # Given a delivery whose push failed midway (stored everywhere, nothing noted as pushed)
    pusher.failing = True
    with pytest.raises(errors.DependencyUnavailableError):
        alerts.deliver(alert)
    assert all(inbox.unpushed(user, alert.id) for user in ("alice", "bob", ADMIN_FEED))

    # When it is delivered again, Then the push is completed to every inbox, from the same copies
    assert alerts.deliver(alert) == 2 + ADMIN_SOCKETS
    assert pusher.reached() == [(["alice", "bob"], True)]
    assert len(inbox.copies) == 3

    # When a new owner appears and it comes once more, Then only the new owner's inbox gets it
    owners["meter-1"].add("dave")
    assert alerts.deliver(alert) == 1
    assert pusher.reached()[1:] == [(["dave"], False)]

    # And a redelivery that finds every inbox reached pushes to nobody and stores nothing
    assert alerts.deliver(alert) == 0
    assert pusher.reached()[2:] == [([], False)]
    assert sorted(inbox.copies) == sorted((u, alert.id) for u in ("alice", "bob", "dave", ADMIN_FEED))
    assert ids(alerts, BOB) == [alert.id]


# --- listing and acknowledging ----------------------------------------------------------


def test_a_client_lists_only_their_own_alerts_an_admin_the_feed_and_unacknowledged_come_first(
    alerts: AlertService, clock: Clock
) -> None:
    older, newer, carols = raised(1), raised(2), raised(3, "meter-2")
    for alert in (older, newer, carols):
        alerts.deliver(alert)

    alerts.acknowledge(ALICE, newer.id)

    # The acknowledged alert is newer, yet listed after the unacknowledged one
    assert listed(alerts, ALICE) == [(older.id, None), (newer.id, stamp(clock.now))]
    assert ids(alerts, ALICE, unacknowledged=True) == [older.id]
    assert ids(alerts, BOB) == [newer.id, older.id]  # alice's acknowledgement is hers only
    assert ids(alerts, CAROL) == [carols.id]
    assert listed(alerts, ADMIN_1) == [(carols.id, None), (newer.id, None), (older.id, None)]


def test_acknowledging_is_per_user_and_idempotent_and_someone_elses_alert_is_not_found(
    alerts: AlertService, clock: Clock
) -> None:
    alert, carols = raised(9), raised(10, "meter-2")
    alerts.deliver(alert)
    alerts.deliver(carols)
    first = stamp(clock.now)

    assert alerts.acknowledge(ALICE, alert.id) == AlertOut(**alert.model_dump(), acknowledged_at=first)
    clock.advance(hours=1)
    assert alerts.acknowledge(ALICE, alert.id).acknowledged_at == first  # again, later: unchanged
    assert listed(alerts, ALICE) == [(alert.id, first)]
    assert listed(alerts, BOB) == [(alert.id, None)]

    # An admin acknowledges the feed's alert for themselves only
    assert alerts.acknowledge(ADMIN_1, alert.id).acknowledged_at == stamp(clock.now)
    assert listed(alerts, ADMIN_1) == [(carols.id, None), (alert.id, stamp(clock.now))]
    assert listed(alerts, ADMIN_2) == [(carols.id, None), (alert.id, None)]

    # Another owner's alert, or no alert at all, is not found, and nothing changes
    for who, alert_id in ((BOB, carols.id), (CAROL, alert.id), (ALICE, "meter-1:nowhere")):
        with pytest.raises(errors.NotFoundError):
            alerts.acknowledge(who, alert_id)
    assert listed(alerts, CAROL) == [(carols.id, None)]
    assert listed(alerts, BOB) == [(alert.id, None)]


def test_the_alerts_of_a_device_that_no_longer_exists_are_left_out(
    alerts: AlertService, existing: set[str]
) -> None:
    kept, gone = raised(3, "meter-2"), raised(2)
    alerts.deliver(kept)
    alerts.deliver(gone)

    existing.discard("meter-1")

    assert ids(alerts, ADMIN_1) == [kept.id]
    assert ids(alerts, ALICE) == []
    assert ids(alerts, CAROL) == [kept.id]


def test_forgetting_a_device_removes_the_copies_of_its_alerts_raised_before_its_deletion_only(
    alerts: AlertService, inbox: InMemoryInbox, clock: Clock
) -> None:
    before, after, other = raised(1), raised(3), raised(2, "meter-2")
    for alert in (before, after, other):
        alerts.deliver(alert)
    alerts.acknowledge(ADMIN_1, before.id)  # an admin's acknowledgement holds a copy too
    alerts.acknowledge(ALICE, after.id)

    # The device was deleted between the two alerts (a new meter with its id raised the later one)
    removed = alerts.forget_device("meter-1", DAY.replace(hour=3).isoformat(timespec="seconds"))

    assert removed == 4  # alice's, bob's, the feed's and admin-1's acknowledgement
    assert not [key for key in inbox.copies if key[1] == before.id]
    assert listed(alerts, ALICE) == [(after.id, stamp(clock.now))]
    assert ids(alerts, BOB) == [after.id]
    assert ids(alerts, ADMIN_1) == [after.id, other.id]
    assert ids(alerts, CAROL) == [other.id]
    assert alerts.forget_device("meter-1", DAY.replace(hour=3).isoformat(timespec="seconds")) == 0


# --- paging -----------------------------------------------------------------------------


def pages(alerts: AlertService, who: Principal, limit: int, unacknowledged: bool = False) -> list[list[str]]:
    """The ids of each page, following the cursor to the end (a listing that never ends fails)."""
    found: list[list[str]] = []
    cursor: str | None = None
    for _ in range(20):
        page = alerts.list_for(who, limit, cursor, unacknowledged)
        assert len(page.items) <= limit
        found.append([a.id for a in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError(f"the cursor did not lead to the end: {found}")


def test_following_the_cursor_lists_every_alert_once_in_the_order_of_the_whole_listing(
    alerts: AlertService
) -> None:
    raised_alerts = [raised(hour) for hour in range(7)]
    for alert in raised_alerts:
        alerts.deliver(alert)
    for hour in (1, 4, 5):
        alerts.acknowledge(ALICE, raised_alerts[hour].id)
    alerts.acknowledge(ADMIN_1, raised_alerts[6].id)
    order = [raised_alerts[hour].id for hour in (6, 3, 2, 0, 5, 4, 1)]  # unacknowledged, then acknowledged
    assert ids(alerts, ALICE) == order

    alices = pages(alerts, ALICE, 2)
    assert len(alices) >= 4 and [a for page in alices for a in page] == order
    admins = pages(alerts, ADMIN_1, 3)
    assert len(admins) >= 3 and [a for page in admins for a in page] == ids(alerts, ADMIN_1)
    assert [a for page in admins for a in page][-1] == raised_alerts[6].id
    pending = pages(alerts, ALICE, 3, unacknowledged=True)
    assert len(pending) >= 2 and [a for page in pending for a in page] == order[:4]


def test_a_cursor_is_only_good_for_the_listing_it_came_from(alerts: AlertService) -> None:
    for hour in range(3):
        alerts.deliver(raised(hour))
    alices = alerts.list_for(ALICE, 1, None, False).next_cursor
    assert alices is not None

    for who, cursor in ((BOB, alices), (ALICE, "not-a-cursor")):
        with pytest.raises(errors.ValidationError):
            alerts.list_for(who, 1, cursor, False)
    assert alerts.list_for(ALICE, 1, alices, False).items[0].id == raised(1).id


def test_the_fleets_open_alerts_are_the_feeds_that_no_admin_acknowledged_yet(alerts: AlertService) -> None:
    for alert in (raised(9), raised(10), raised(11, "meter-2")):
        alerts.deliver(alert)
    assert alerts.open_by_device() == {"meter-1": 2, "meter-2": 1}

    alerts.acknowledge(ALICE, raised(9).id)  # an owner's acknowledgement is theirs alone
    assert alerts.open_by_device() == {"meter-1": 2, "meter-2": 1}
    alerts.acknowledge(ADMIN_1, raised(10).id)
    assert alerts.open_by_device() == {"meter-1": 1, "meter-2": 1}
    alerts.forget_device("meter-2", "2099-01-01T00:00:00+00:00")
    assert alerts.open_by_device() == {"meter-1": 1}
