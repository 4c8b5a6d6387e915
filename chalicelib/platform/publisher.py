"""Publishes versioned domain events (`chalicelib.messages.SyncEvent`) to a context's SNS topic."""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws, errors
from chalicelib.messages import SyncEvent
from chalicelib.observability import logger
from chalicelib.settings import get_settings


class Publisher(Protocol):
    def publish(self, topic: str, event: SyncEvent) -> None: ...


@lru_cache(maxsize=1)
def _account_id() -> str:
    return str(aws.client("sts").get_caller_identity()["Account"])


def topic_arn(topic: str) -> str:
    """The ARN of the stage's topic `topic` (a logical name such as `identity-events`)."""
    settings = get_settings()
    return f"arn:aws:sns:{settings.region}:{_account_id()}:{settings.resource_name(topic)}"


class SnsPublisher:
    """Publishes to SNS; a failure becomes DependencyUnavailableError (the outbox keeps the event)."""

    def publish(self, topic: str, event: SyncEvent) -> None:
        try:
            aws.client("sns").publish(
                TopicArn=topic_arn(topic),
                Message=event.body(),
                MessageAttributes={"type": {"DataType": "String", "StringValue": event.type}},
            )
        except (ClientError, BotoCoreError) as exc:
            logger.error("event not published", extra={"topic": topic, "type": event.type, "error": str(exc)})
            raise errors.DependencyUnavailableError("The event bus is unavailable.") from exc
        logger.info("event published", extra={"topic": topic, "type": event.type, "entity_id": event.entity_id})
