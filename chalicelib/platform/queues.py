"""The stage's queues: their URLs, redrive limits, and sending a typed message."""

from __future__ import annotations

import json
from functools import cache

from chalicelib import aws
from chalicelib.messages import AlertRaised, DeviceDeleted, ReadingBatch, ReadingsUpdated
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


def send(queue: str, message: AlertRaised | DeviceDeleted | ReadingsUpdated | ReadingBatch) -> None:
    """Put one typed message on the queue `queue` (a logical name)."""
    aws.client("sqs").send_message(QueueUrl=queue_url(queue), MessageBody=message.body())
