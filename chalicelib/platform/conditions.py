"""Conditional writes (pynamodb), read as a yes or a no."""

from __future__ import annotations

from collections.abc import Callable

from pynamodb.exceptions import UpdateError


def applied(update: Callable[[], object]) -> bool:
    """Whether a conditional update was applied (False when its condition did not hold)."""
    try:
        update()
        return True
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        return False
