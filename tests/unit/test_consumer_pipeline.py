"""The one SQS consumer pipeline, in-process against moto's SQS: typed messages in, failures out.

Every consumer goes through it, so its rules are pinned here once: a body that does not parse is
dead-lettered alone with its reason; a consumer's `InvalidMessage` dead-letters its record; any
other failure retries that record alone (or the whole batch when a batch consumer raises);
dead letters wait for a record's last retry; the last delivery is known from the redrive policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import names
from chalicelib.messages import InvalidMessage, parse_notification
from chalicelib.platform import consumer, queues
from chalicelib.platform.consumer import DeadLetter, Delivery, Outcome, Source
from tests.faked_stage import REGION, faked_stage

QUEUE = "notifications"


@pytest.fixture
def sqs() -> Iterator[Any]:
    """The stage's notifications queue and its dead-letter queue (maxReceiveCount 3) in a fake SQS."""
    with faked_stage() as stage:
        client = boto3.client("sqs", region_name=REGION)
        dlq = client.create_queue(QueueName=names.resource_name(names.dead_letter_queue(QUEUE), stage))["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        client.create_queue(QueueName=names.resource_name(QUEUE, stage), Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})})
        queues.queue_url.cache_clear()
        queues.max_receive_count.cache_clear()
        yield client
        queues.queue_url.cache_clear()
        queues.max_receive_count.cache_clear()


def dead_letters(sqs: Any) -> dict[str, dict[str, str]]:
    """The dead-letter queue's messages: body -> string attributes."""
    url = queues.queue_url(names.dead_letter_queue(QUEUE))
    found = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return {m["Body"]: {k: v["StringValue"] for k, v in m.get("MessageAttributes", {}).items()}
            for m in found.get("Messages", [])}


def record(message_id: str, body: str, receive_count: int = 1) -> dict[str, Any]:
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}", "body": body,
            "attributes": {"ApproximateReceiveCount": str(receive_count)}, "messageAttributes": {},
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q"}


def deleted(device_id: str) -> str:
    return json.dumps({"type": "device.deleted", "device_id": device_id, "deleted_at": "2026-12-01T00:00:00Z"})


SOURCE = Source(QUEUE, parse_notification)


def failures(response: dict[str, Any]) -> set[str]:
    return {f["itemIdentifier"] for f in response["batchItemFailures"]}


def test_a_body_that_does_not_parse_is_dead_lettered_alone_with_its_reason(sqs: Any) -> None:
    handled: list[str] = []

    response = consumer.run(SOURCE, [record("a", deleted("m1")), record("b", "{not json"),
                                     record("c", json.dumps({"type": "alert.exploded"}))],
                            consumer.each(QUEUE, lambda message: handled.append(message.device_id)))

    assert failures(response) == set() and handled == ["m1"]
    dead = dead_letters(sqs)
    assert dead["{not json"]["error_reason"].startswith("not JSON")
    assert dead['{"type": "alert.exploded"}']["error_reason"] == "unknown notification type 'alert.exploded'"
    assert {d["source_message_id"] for d in dead.values()} == {"b", "c"}
    assert all(d["source_queue"] == names.resource_name(QUEUE) for d in dead.values())


def test_a_consumer_refusal_dead_letters_its_record_and_a_failure_retries_it_alone(sqs: Any) -> None:
    def handle(message: Any) -> None:
        if message.device_id == "refused":
            raise InvalidMessage("this device was never ours")
        if message.device_id == "flaky":
            raise TimeoutError("the table did not answer")

    response = consumer.run(SOURCE, [record("a", deleted("refused")), record("b", deleted("flaky")),
                                     record("c", deleted("fine"))], consumer.each(QUEUE, handle))

    assert failures(response) == {"b"}
    assert dead_letters(sqs) == {deleted("refused"): {
        "error_reason": "this device was never ours", "source_message_id": "a",
        "source_queue": names.resource_name(QUEUE)}}


def test_a_batch_consumer_sees_the_whole_batch_typed_and_knows_the_last_delivery(sqs: Any) -> None:
    seen: list[Delivery[Any]] = []

    def handle_batch(deliveries: list[Delivery[Any]]) -> Outcome:
        seen.extend(deliveries)
        return Outcome(failed={"a"}, dead=[DeadLetter("part of a", "bad part", "a"),
                                           DeadLetter("part of b", "bad part", "b", {"reading_index": "4"})])

    response = consumer.run(SOURCE, [record("a", deleted("m1"), receive_count=1),
                                     record("b", deleted("m2"), receive_count=3)], handle_batch)

    assert [(d.message_id, d.message.device_id, d.last_attempt) for d in seen] == [("a", "m1", False), ("b", "m2", True)]
    assert failures(response) == {"a"}
    # a's dead letter waits for its last successful delivery; b's goes now, with its extra attribute
    assert {body: attrs.get("reading_index") for body, attrs in dead_letters(sqs).items()} == {"part of b": "4"}


def test_a_batch_consumer_that_raises_retries_every_record_and_loses_nothing(sqs: Any) -> None:
    def handle_batch(deliveries: list[Delivery[Any]]) -> Outcome:
        raise ConnectionError("the endpoint went away")

    response = consumer.run(SOURCE, [record("a", deleted("m1")), record("b", "{bad")], handle_batch)

    assert failures(response) == {"a"}  # the unparsable one is already in the dead-letter queue
    assert set(dead_letters(sqs)) == {"{bad"}


def test_when_the_dead_letter_queue_refuses_the_records_are_retried_instead(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(queue: str, letters: Any) -> None:
        raise RuntimeError("the dead-letter queue refused 1 message(s)")

    monkeypatch.setattr(consumer, "dead_letter_many", refuse)

    response = consumer.run(SOURCE, [record("a", "{bad"), record("b", deleted("m1"))],
                            consumer.each(QUEUE, lambda message: None))

    assert failures(response) == {"a"}


def test_every_notification_carries_its_type_and_schema_version_and_older_ones_still_parse() -> None:
    from chalicelib.messages import DeviceDeleted

    body = json.loads(DeviceDeleted(device_id="m1", deleted_at="2026-12-01T00:00:00Z").body())
    assert body == {"type": "device.deleted", "schema_version": 1, "device_id": "m1",
                    "deleted_at": "2026-12-01T00:00:00Z"}
    assert parse_notification(deleted("m1")).schema_version == 1  # sent before versions were written
    with pytest.raises(InvalidMessage, match="invalid device.deleted"):
        parse_notification(json.dumps({**body, "schema_version": 2}))
