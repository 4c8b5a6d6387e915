"""Publishes versioned domain events to a context's SNS topic, in the shared envelope."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws, errors
from chalicelib.observability import logger
from chalicelib.settings import get_settings

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Event:
    """`{type, event_id, schema_version, entity_id, entity_version, occurred_at, data}`."""

    type: str
    entity_id: str
    entity_version: int
    data: dict[str, Any]
    event_id: str = ""
    occurred_at: str = ""

    def envelope(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "event_id": self.event_id or str(uuid.uuid4()),
            "schema_version": SCHEMA_VERSION,
            "entity_id": self.entity_id,
            "entity_version": self.entity_version,
            "occurred_at": self.occurred_at or dt.datetime.now(dt.UTC).isoformat(),
            "data": self.data,
        }


class Publisher(Protocol):
    def publish(self, topic: str, event: Event) -> None: ...


@lru_cache(maxsize=1)
def _account_id() -> str:
    return str(aws.client("sts").get_caller_identity()["Account"])


def topic_arn(topic: str) -> str:
    """The ARN of the stage's topic `topic` (a logical name such as `identity-events`)."""
    settings = get_settings()
    return f"arn:aws:sns:{settings.region}:{_account_id()}:{settings.resource_name(topic)}"


class SnsPublisher:
    """Publishes to SNS; a failure becomes DependencyUnavailableError (the outbox keeps the event)."""

    def publish(self, topic: str, event: Event) -> None:
        envelope = event.envelope()
        try:
            aws.client("sns").publish(
                TopicArn=topic_arn(topic),
                Message=json.dumps(envelope),
                MessageAttributes={"type": {"DataType": "String", "StringValue": event.type}},
            )
        except (ClientError, BotoCoreError) as exc:
            logger.error("event not published", extra={"topic": topic, "type": event.type, "error": str(exc)})
            raise errors.DependencyUnavailableError("The event bus is unavailable.") from exc
        logger.info("event published", extra={"topic": topic, "type": event.type, "entity_id": event.entity_id})
