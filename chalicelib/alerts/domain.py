"""The alerts context's domain: the admins' feed and the port to where the inboxes are kept.

An alert (`chalicelib.messages.Alert`) is kept per inbox: each owner of its device gets a copy of
their own, the admins share one feed (`ADMIN_FEED`), and each user acknowledges for themselves.
The service works on these; an inbox store (DynamoDB in production, dictionaries in unit tests)
keeps them.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from chalicelib.alerts.models import AlertOut
from chalicelib.messages import Alert

ADMIN_FEED = "#admins"  # the inbox every admin reads (no user has this id)


class Inbox(Protocol):
    """Every user's alerts. An owner's copies are theirs; the feed's are every admin's, each admin
    acknowledging for themselves (their acknowledgement holds a copy of the alert). A copy stays,
    acknowledged or not, until its device is deleted. "Newest first" orders alerts by `created_at`,
    then by id."""

    def store(self, user_id: str, alert: Alert) -> bool:
        """Put the alert, not yet pushed, in one inbox (an owner's or `ADMIN_FEED`) unless something
        of that alert is already there; True if this call put it."""
        ...

    def unpushed(self, user_id: str, alert_id: str) -> bool:
        """Whether the alert is in this inbox but was not yet pushed to live sockets."""
        ...

    def mark_pushed(self, user_id: str, alert_id: str) -> None:
        """The alert stored in this inbox was pushed to its live sockets."""
        ...

    def list_page(self, user_id: str, is_admin: bool, limit: int, cursor: str | None,
                  unacknowledged: bool) -> tuple[list[AlertOut], str | None]:
        """Up to `limit` of a user's alerts (an admin's: the feed's), each with when this user
        acknowledged it: the unacknowledged ones newest first, then (unless `unacknowledged`) the
        acknowledged ones newest first; and the cursor of the rest, None at the end. A page may
        hold fewer than `limit` alerts (even none) with a cursor to go on; following the cursors
        lists each alert once. A cursor that is not from a listing of this inbox is a
        ValidationError."""
        ...

    def acknowledge(self, user_id: str, alert_id: str, is_admin: bool, now: dt.datetime) -> AlertOut | None:
        """Mark an alert acknowledged by this user at `now` (kept as ISO UTC to the second; idempotent:
        the first acknowledgement's time stays) and return it as they see it; None if it is not in
        their inbox (an admin's: the feed)."""
        ...

    def open_by_device(self) -> dict[str, int]:
        """How many of the feed's alerts no admin has acknowledged yet, by device."""
        ...

    def delete_device(self, device_id: str, before: str) -> int:
        """Remove every copy of a deleted device's alerts raised before `before` (an ISO time): owners'
        copies, the feed's and admins' acknowledgements. The number removed."""
        ...
