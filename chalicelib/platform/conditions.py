"""Conditional writes (pynamodb), read as a yes or a no."""

from __future__ import annotations

from collections.abc import Callable

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError


def counted_in_window(count: Callable[[], object], start: Callable[[], object]) -> bool:
    """Count one request in a fixed window: `count` adds to the current window (conditional on it
    being current and under its limit), `start` begins a new one (conditional on none being
    current). A request that loses the race to start the window counts in the one the other
    started, so two first requests at once are not refused. False: the window is full."""
    return applied(count) or applied(start) or applied(count)


def applied(write: Callable[[], object]) -> bool:
    """Whether a conditional put, update or transaction was applied (False when a condition did
    not hold)."""
    try:
        write()
        return True
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        return False
    except (PutError, UpdateError) as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        return False


def condition_failed(exc: TransactWriteError) -> bool:
    """Whether a transaction was cancelled because one of its conditions did not hold."""
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in (exc.cancellation_reasons or []))
