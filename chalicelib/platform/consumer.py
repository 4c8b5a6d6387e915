"""SQS consumers: one record at a time, a failing record fails alone.

A record whose handler raises `PermanentError` can never succeed (malformed, rejected): it
goes to the queue's dead-letter queue at once, with an `error_reason` attribute, and the
batch goes on. Any other exception is a retryable failure: the record is reported in
`batchItemFailures`, comes back after the visibility timeout, and reaches the dead-letter
queue through the redrive policy once it has failed `maxReceiveCount` times.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import aws, names
from chalicelib.observability import logger
from chalicelib.settings import get_settings

RecordHandler = Callable[[SQSRecord], None]
_MAX_REASON = 1000


class PermanentError(Exception):
    """This record can never be processed; dead-letter it with this reason."""


@cache
def queue_url(logical_name: str) -> str:
    name = get_settings().resource_name(logical_name)
    return str(aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


@dataclass(frozen=True)
class DeadLetter:
    """A message body for a dead-letter queue, with why and where from."""

    body: str
    reason: str
    source_message_id: str
    extra: dict[str, str] = field(default_factory=dict)  # more string attributes (e.g. reading_index)


def dead_letter(queue: str, record: SQSRecord, reason: str) -> None:
    """Move one record to `queue`'s dead-letter queue with the reason attached."""
    dead_letter_many(queue, [DeadLetter(record.body, reason, record.message_id)])


def dead_letter_many(queue: str, letters: Sequence[DeadLetter]) -> None:
    """Put these on `queue`'s dead-letter queue, ten to a request; raises if any was refused."""
    source = get_settings().resource_name(queue)
    url = queue_url(names.dead_letter_queue(queue))
    for start in range(0, len(letters), 10):
        entries = []
        for i, letter in enumerate(letters[start:start + 10]):
            attributes: dict[str, Any] = {
                "error_reason": {"DataType": "String", "StringValue": letter.reason[:_MAX_REASON] or "unknown"},
                "source_queue": {"DataType": "String", "StringValue": source},
                "source_message_id": {"DataType": "String", "StringValue": letter.source_message_id},
            }
            for name, value in letter.extra.items():
                attributes[name] = {"DataType": "String", "StringValue": value}
            entries.append({"Id": str(i), "MessageBody": letter.body, "MessageAttributes": attributes})
        refused = aws.client("sqs").send_message_batch(QueueUrl=url, Entries=entries).get("Failed") or []
        if refused:
            raise RuntimeError(f"the dead-letter queue refused {len(refused)} message(s): {refused[0].get('Message')}")


def consume(queue: str, event: Any, handle: RecordHandler) -> dict[str, Any]:
    """Run `handle` on every record of a Chalice SQS event; returns Lambda's partial response."""

    def record_handler(record: SQSRecord) -> None:
        logger.append_keys(message_id=record.message_id)
        try:
            handle(record)
        except PermanentError as exc:
            logger.warning("record dead-lettered", extra={"queue": queue, "reason": str(exc)})
            dead_letter(queue, record, str(exc))
        except Exception as exc:
            logger.warning("record failed; it will be retried",
                           extra={"queue": queue, "error": f"{type(exc).__name__}: {exc}",
                                  "receive_count": record.attributes.approximate_receive_count})
            raise
        finally:
            logger.remove_keys(["message_id"])

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return dict(process_partial_response(
        event=event.to_dict(), record_handler=record_handler, processor=processor, context=event.context
    ))
