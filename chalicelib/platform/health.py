"""Liveness for anyone; the reachability of every table and queue of the stage for admins.

The public answer names nothing and costs no AWS call (a load balancer or uptime probe may
call it often); the detailed one asks the endpoint for each table and queue.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws, names
from chalicelib.observability import logger
from chalicelib.settings import get_settings


@dataclass(frozen=True)
class HealthReport:
    """Which backing resources answered."""

    stage: str
    tables: dict[str, bool]
    queues: dict[str, bool]

    @property
    def healthy(self) -> bool:
        return all(self.tables.values()) and all(self.queues.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "degraded",
            "stage": self.stage,
            "tables": self.tables,
            "queues": self.queues,
        }


def _table_exists(physical_name: str) -> bool:
    try:
        aws.client("dynamodb").describe_table(TableName=physical_name)
        return True
    except (ClientError, BotoCoreError) as exc:
        logger.warning("table unreachable", extra={"table": physical_name, "error": str(exc)})
        return False


def _queue_exists(physical_name: str) -> bool:
    try:
        aws.client("sqs").get_queue_url(QueueName=physical_name)
        return True
    except (ClientError, BotoCoreError) as exc:
        logger.warning("queue unreachable", extra={"queue": physical_name, "error": str(exc)})
        return False


def liveness() -> dict[str, str]:
    """The API is up: no resource is named, nothing is read."""
    return {"status": "ok", "stage": get_settings().stage}


def check() -> HealthReport:
    """Ask the endpoint for every table and queue at once."""
    settings = get_settings()
    tables = [settings.resource_name(t) for t in names.TABLES]
    queues = [
        settings.resource_name(n)
        for q in names.QUEUES
        for n in (q, names.dead_letter_queue(q))
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        table_ok = list(pool.map(_table_exists, tables))
        queue_ok = list(pool.map(_queue_exists, queues))
    return HealthReport(
        stage=settings.stage,
        tables=dict(zip(tables, table_ok, strict=True)),
        queues=dict(zip(queues, queue_ok, strict=True)),
    )
