"""Alerts' request and response shapes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.messages import Alert

MAX_LISTED = 500  # the largest page


class AlertOut(Alert):
    """An alert as one user sees it: acknowledged by them or not."""

    acknowledged_at: str | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class AlertsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=100, ge=1, le=MAX_LISTED)
    cursor: str | None = None
    unacknowledged: bool = False
