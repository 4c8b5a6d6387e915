"""Publishes versioned domain events (`chalicelib.messages.SyncEvent`) to a context's SNS topic."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws
from chalicelib.messages import SyncEvent
from chalicelib.observability import logger
from chalicelib.settings import get_settings


class Publisher(Protocol):
    def publish(self, topic: str, events: Sequence[SyncEvent]) -> list[SyncEvent]:
        """Publish these events to `topic`; those it could not publish (the outbox keeps them)."""
        ...


@lru_cache(maxsize=1)
def _account_id() -> str:
    return str(aws.client("sts").get_caller_identity()["Account"])


def topic_arn(topic: str) -> str:
    """The ARN of the stage's topic `topic` (a logical name such as `identity-events`)."""
    settings = get_settings()
    return f"arn:aws:sns:{settings.region}:{_account_id()}:{settings.resource_name(topic)}"


BATCH = 10  # the most messages SNS takes in one PublishBatch


class SnsPublisher:
    """Publishes to SNS, ten events to a request; a refused request or entry is logged and left
    to the outbox."""

    def publish(self, topic: str, events: Sequence[SyncEvent]) -> list[SyncEvent]:
        unpublished: list[SyncEvent] = []
        for start in range(0, len(events), BATCH):
            batch = {str(n): event for n, event in enumerate(events[start:start + BATCH])}
            try:
                answer = aws.client("sns").publish_batch(TopicArn=topic_arn(topic), PublishBatchRequestEntries=[
                    {"Id": n, "Message": event.body(),
                     "MessageAttributes": {"type": {"DataType": "String", "StringValue": event.type}}}
                    for n, event in batch.items()])
            except (ClientError, BotoCoreError) as exc:
                logger.error("events not published", extra={"topic": topic, "count": len(batch), "error": str(exc)})
                unpublished.extend(batch.values())
                continue
            for failure in answer.get("Failed", []):
                event = batch[failure["Id"]]
                logger.error("event not published", extra={"topic": topic, "type": event.type,
                                                            "entity_id": event.entity_id, "error": failure.get("Code")})
                unpublished.append(event)
            logger.info("events published", extra={"topic": topic, "count": len(batch) - len(answer.get("Failed", []))})
        return unpublished
