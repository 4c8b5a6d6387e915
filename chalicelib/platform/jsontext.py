"""JSON that comes from outside (bodies, frames, messages, cursors), parsed one way."""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes, **options: Any) -> Any:
    """The JSON value of `text`; malformed, undecodable or too deeply nested text raises ValueError.

    json.loads raises RecursionError for deep nesting (`[[[[…`), which no caller expects from
    bad input: here it is a ValueError like any other malformed text.
    """
    try:
        return json.loads(text, **options)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc
