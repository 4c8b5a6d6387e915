"""Structured JSON logging, one line per event, with the request or message id.

The logger is the one object created at import: Powertools binds its stream there, and
that is what Lambda (and the local runtime, which renders the lines) reads.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="ems", utc=True)


def bind_request(correlation_id: str, **keys: Any) -> None:
    """Attach the id of the request or message being handled to every later log line."""
    from chalicelib.settings import get_settings

    logger.setLevel(get_settings().log_level)
    logger.remove_keys(["request_id", "message_id", "connection_id", "route"])
    logger.set_correlation_id(correlation_id)
    logger.append_keys(**keys)
