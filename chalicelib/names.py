"""Physical names of tables, queues and topics: `ems-{stage}-{name}`.

Chalice binds SQS queue names and pynamodb binds table names when the app is imported, so
these are the one thing read from the environment at import time (with a default).
"""

from __future__ import annotations

import os

DEFAULT_STAGE = "local"
PREFIX = "ems"


def current_stage() -> str:
    """The stage named by `EMS_STAGE`, `local` when unset."""
    return os.environ.get("EMS_STAGE") or DEFAULT_STAGE


def resource_name(name: str, stage: str | None = None) -> str:
    """`ems-{stage}-{name}` for the given (or current) stage."""
    return f"{PREFIX}-{stage or current_stage()}-{name}"


def cors_allow_origin() -> str:
    """The browser origin allowed to call the REST API (`EMS_CORS_ALLOW_ORIGIN`).

    Bound at import like the resource names: API Gateway's generated preflight answers use it.
    """
    return os.environ.get("EMS_CORS_ALLOW_ORIGIN") or "http://localhost:8000"


# Every table, queue and topic the app uses, by logical name. infra/template.yaml declares
# each of them once; tests/integration/test_infra.py keeps the two lists equal.
TABLES = (
    "users",
    "usernames",
    "login-attempts",
    "devices",
    "device-owners",
    "device-serials",
    "api-keys",
    "meters",
    "hourly-totals",
    "alerts",
    "alert-inbox",
    "connections",
    "presence",
    "conversations",
    "chat-messages",
    "outbox",
)
QUEUES = ("readings", "notifications", "silent-checks", "monitoring-sync", "devices-sync", "realtime-sync")
TOPICS = ("identity-events", "devices-events", "alarms")


def dead_letter_queue(queue: str) -> str:
    """The logical name of a queue's dead-letter queue."""
    return f"{queue}-dlq"
