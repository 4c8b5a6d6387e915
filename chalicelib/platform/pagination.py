"""Opaque `next_cursor` values for `{"items": [...], "next_cursor"}` collections."""

from __future__ import annotations

import base64
import json
from typing import Any

from chalicelib import errors
from chalicelib.platform import jsontext


def encode_cursor(last_evaluated_key: dict[str, Any] | None) -> str | None:
    """DynamoDB's LastEvaluatedKey as a URL-safe cursor (None at the end of the list)."""
    if not last_evaluated_key:
        return None
    return base64.urlsafe_b64encode(json.dumps(last_evaluated_key).encode()).decode()


def decode_cursor(cursor: str | None, key_names: set[str]) -> dict[str, Any] | None:
    """The ExclusiveStartKey a cursor stands for; 422 for anything not made by encode_cursor."""
    if not cursor:
        return None
    try:
        key = jsontext.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(key, dict) or set(key) != key_names:
            raise ValueError("unexpected key")
        # Every key attribute of ours is a non-empty string: {"S": "..."} and nothing else.
        if not all(isinstance(v, dict) and set(v) == {"S"} and isinstance(v["S"], str) and v["S"]
                   for v in key.values()):
            raise ValueError("unexpected key value")
        return key
    except ValueError as exc:
        raise bad_cursor() from exc


def bad_cursor() -> errors.ValidationError:
    """The 422 of a cursor that is not from the list it is sent to."""
    return errors.ValidationError("The cursor is not valid.", [errors.FieldError("cursor", "not a cursor from this list")])


def by_name(name: str, item_id: str) -> str:
    """A sort key that lists items by name without case, then id (ids keep equal names apart)."""
    return f"{name.lower()}\x00{item_id}"
