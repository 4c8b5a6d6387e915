"""The `alert-inbox` table: an alert per owner (and one in the admins' feed), acknowledged per user;
the only code that touches it (`DynamoInbox`, the Inbox port).

Owners get their own copy (`user_id` = the owner). The admins share one feed (`user_id` =
`#admins`); an admin's acknowledgement is an item of its own (`user_id` = the admin, with
only `acknowledged_at`), so each admin acknowledges for themselves.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pynamodb.attributes import BooleanAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist
from pynamodb.expressions.condition import Condition
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection

from chalicelib import names
from chalicelib.alerts.domain import ADMIN_FEED
from chalicelib.alerts.models import AlertOut
from chalicelib.messages import Alert
from chalicelib.platform.conditions import applied
from chalicelib.platform.pagination import bad_cursor, decode_cursor, encode_cursor
from chalicelib.platform.persistence import Item, delete_all, one_page


class _ByTime(GlobalSecondaryIndex["InboxItem"]):
    """Every copy of a user's inbox by time."""

    class Meta:
        index_name = "by_time"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


class _Pending(GlobalSecondaryIndex["InboxItem"]):
    """Owners' unacknowledged copies by time (sparse: the acknowledgement removes `pending_at`)."""

    class Meta:
        index_name = "pending"
        projection = AllProjection()

    user_id = UnicodeAttribute(hash_key=True)
    pending_at = UnicodeAttribute(range_key=True)


class _ByDevice(GlobalSecondaryIndex["InboxItem"]):
    """Every copy of a device's alerts, in every inbox (keys only)."""

    class Meta:
        index_name = "by_device"
        projection = KeysOnlyProjection()

    device_id = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


class InboxItem(Item):
    class Meta:
        table_name = names.resource_name("alert-inbox")

    user_id = UnicodeAttribute(hash_key=True)
    alert_id = UnicodeAttribute(range_key=True)
    alert = UnicodeAttribute(null=True)  # the Alert as JSON (absent on an admin's bare acknowledgement)
    pushed = BooleanAttribute(null=True)
    at = UnicodeAttribute(null=True)
    pending_at = UnicodeAttribute(null=True)
    device_id = UnicodeAttribute(null=True)
    acknowledged_at = UnicodeAttribute(null=True)
    by_time = _ByTime()
    pending = _Pending()
    by_device = _ByDevice()


PAGE_READS = 5  # index pages one listing reads at most; a longer walk goes on with the cursor


def _at(alert: Alert) -> str:
    """The copy's place in time: creation time, then id (unique, and sorts newest last)."""
    return f"{alert.created_at}#{alert.id}"


def _out(item: InboxItem, acknowledged_at: str | None) -> AlertOut:
    return AlertOut.model_validate({**json.loads(item.alert or "{}"), "acknowledged_at": acknowledged_at})


Key = dict[str, Any]


def _query(index: _ByTime | _Pending, user_id: str, limit: int, start: Key | None,
           condition: Condition | None = None) -> tuple[list[InboxItem], Key | None]:
    """One index page (one request) of a user's copies, newest first."""
    return one_page(InboxItem, index.query(user_id, scan_index_forward=False, page_size=limit, last_evaluated_key=start,
                                           filter_condition=condition))


def _pending(user_id: str, is_admin: bool, limit: int, start: Key | None) -> tuple[list[AlertOut], Key | None]:
    """A page of the user's unacknowledged alerts, newest first."""
    if not is_admin:
        items, last = _query(InboxItem.pending, user_id, limit, start)
        return [_out(i, None) for i in items], last
    # An admin's: the feed's alerts without an acknowledgement item of theirs.
    items, last = _query(InboxItem.by_time, ADMIN_FEED, limit, start)
    acked = _acknowledged_ids(user_id, [i.alert_id for i in items])
    return [_out(i, None) for i in items if i.alert_id not in acked], last


def _acknowledged_ids(user_id: str, alert_ids: list[str]) -> set[str]:
    """Which of these alerts the user acknowledged."""
    found = InboxItem.batch_get([(user_id, a) for a in alert_ids], consistent_read=True,
                                attributes_to_get=["user_id", "alert_id", "acknowledged_at"])
    return {i.alert_id for i in found if i.acknowledged_at is not None}


def _acknowledged(user_id: str, limit: int, start: Key | None) -> tuple[list[AlertOut], Key | None]:
    """A page of the alerts the user acknowledged, newest first (an admin's hold a copy of the alert)."""
    items, last = _query(InboxItem.by_time, user_id, limit, start,
                         InboxItem.acknowledged_at.exists() & InboxItem.alert.exists())
    return [_out(i, i.acknowledged_at) for i in items], last


_PHASES = {"p": "pending", "a": "acknowledged"}


def _encode(phase: str, start: Key | None) -> str:
    """`<phase letter>.<where to go on>`."""
    return f"{phase[0]}.{encode_cursor(start) or ''}"


def _decode(cursor: str | None, user_id: str, is_admin: bool) -> tuple[str, Key | None]:
    """A cursor from this user's own listing: (phase, where to go on); 422 for any other."""
    if not cursor:
        return "pending", None
    letter, _, rest = cursor.partition(".")
    phase = _PHASES.get(letter)
    if phase is None:
        raise bad_cursor()
    # The index a phase reads, and so the key a cursor of it holds.
    sort_key = "pending_at" if phase == "pending" and not is_admin else "at"
    start = decode_cursor(rest, {"user_id", "alert_id", sort_key}) if rest else None
    partition = ADMIN_FEED if phase == "pending" and is_admin else user_id
    if start is not None and start["user_id"]["S"] != partition:
        raise bad_cursor()
    return phase, start


class DynamoInbox:
    """The `alert-inbox` table (see Inbox). Each listing reads at most PAGE_READS index pages,
    however large the inbox; a page may then hold fewer than `limit` alerts, with a cursor to go on."""

    def store(self, user_id: str, alert: Alert) -> bool:
        at = _at(alert)
        # Each admin acknowledges the feed in items of their own; the feed's copy stays pending (open,
        # for the fleet's counts) until the first admin acknowledges it.
        item = InboxItem(user_id, alert.id, alert=alert.model_dump_json(), pushed=False, at=at,
                         device_id=alert.device_id, pending_at=at)
        return applied(lambda: item.save(condition=InboxItem.alert_id.does_not_exist()))

    def unpushed(self, user_id: str, alert_id: str) -> bool:
        try:
            return InboxItem.get(user_id, alert_id, consistent_read=True,
                                 attributes_to_get=["user_id", "alert_id", "pushed"]).pushed is False
        except DoesNotExist:
            return False

    def mark_pushed(self, user_id: str, alert_id: str) -> None:
        InboxItem(user_id, alert_id).update(actions=[InboxItem.pushed.set(True)])

    def list_page(self, user_id: str, is_admin: bool, limit: int, cursor: str | None,
                  unacknowledged: bool) -> tuple[list[AlertOut], str | None]:
        phase, start = _decode(cursor, user_id, is_admin)
        out: list[AlertOut] = []
        for _ in range(PAGE_READS):
            if len(out) >= limit:
                break
            if phase == "pending":
                found, start = _pending(user_id, is_admin, limit - len(out), start)
            else:
                found, start = _acknowledged(user_id, limit - len(out), start)
            out.extend(found)
            if start is None:
                if phase == "acknowledged" or unacknowledged:
                    return out, None
                phase = "acknowledged"
        return out, _encode(phase, start)

    def acknowledge(self, user_id: str, alert_id: str, is_admin: bool, now: dt.datetime) -> AlertOut | None:
        """An admin's acknowledgement of a feed alert is an item of their own that holds a copy of it,
        so their acknowledged alerts list from their own items."""
        try:
            source = InboxItem.get(ADMIN_FEED if is_admin else user_id, alert_id, consistent_read=True)
        except DoesNotExist:
            return None
        alert = Alert.model_validate_json(source.alert or "{}")
        stamp = now.astimezone(dt.UTC).isoformat(timespec="seconds")
        mine = InboxItem(user_id, alert_id)
        mine.update(actions=[
            InboxItem.acknowledged_at.set(InboxItem.acknowledged_at | stamp),
            InboxItem.alert.set(InboxItem.alert | (source.alert or "")),
            InboxItem.at.set(InboxItem.at | _at(alert)),
            InboxItem.device_id.set(InboxItem.device_id | alert.device_id),
            InboxItem.pending_at.remove(),
        ])
        if is_admin and source.pending_at is not None:
            applied(lambda: InboxItem(ADMIN_FEED, alert_id).update(actions=[InboxItem.pending_at.remove()],
                                                                   condition=InboxItem.alert_id.exists()))
        return _out(source, mine.acknowledged_at)

    def open_by_device(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in InboxItem.pending.query(ADMIN_FEED, attributes_to_get=["user_id", "alert_id", "device_id"]):
            counts[item.device_id or ""] = counts.get(item.device_id or "", 0) + 1
        return counts

    def delete_device(self, device_id: str, before: str) -> int:
        return delete_all(InboxItem, InboxItem.by_device.query(device_id, _ByDevice.at < before))
