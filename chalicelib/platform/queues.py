"""The stage's queues: their URLs, redrive limits, and sending a typed message."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from chalicelib import aws
from chalicelib.messages import Message
from chalicelib.settings import get_settings


@cache
def queue_url(logical_name: str) -> str:
    name = get_settings().resource_name(logical_name)
    return str(aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


@cache
def max_receive_count(queue: str) -> int:
    """The queue's maxReceiveCount (its redrive policy), read once per process."""
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=queue_url(queue), AttributeNames=["RedrivePolicy"])
    policy = json.loads(attributes.get("Attributes", {}).get("RedrivePolicy", "{}") or "{}")
    return int(policy.get("maxReceiveCount", 5))


def send(queue: str, message: Message) -> None:
    """Put one typed message on the queue `queue` (a logical name)."""
    aws.client("sqs").send_message(QueueUrl=queue_url(queue), MessageBody=message.body())


def send_many(queue: str, messages: list[Message]) -> None:
    """Put typed messages on the queue, ten to a request; raises if any was refused."""
    send_entries(queue_url(queue), [{"MessageBody": m.body()} for m in messages])


def send_entries(url: str, entries: list[dict[str, Any]]) -> None:
    """SendMessageBatch entries (without their `Id`) ten to a request; raises if any was refused."""
    sqs = aws.client("sqs")
    for start in range(0, len(entries), 10):
        chunk = [{"Id": str(i), **entry} for i, entry in enumerate(entries[start:start + 10])]
        refused = sqs.send_message_batch(QueueUrl=url, Entries=chunk).get("Failed") or []
        if refused:
            raise RuntimeError(f"the queue refused {len(refused)} message(s): {refused[0].get('Message')}")
