"""The one pipeline of every SQS consumer: typed messages in, what failed out.

A `Source` names a queue and how its bodies parse into typed messages
(`chalicelib.messages`). For each Lambda batch the pipeline, built on powertools' batch
processor, parses every record; a record that cannot parse (`InvalidMessage`) goes to the
queue's dead-letter queue at once with its reason. The others reach the consumer:

- `consume(source, event, handle)`: `handle(message)` once per record. `InvalidMessage`
  from it dead-letters the record with its reason; any other
  exception is a retryable failure of that record alone.
- `consume_batch(source, event, handle_batch)`: `handle_batch(deliveries)` once for the whole
  batch (the readings consumer groups readings of many records); it returns an `Outcome`:
  the records to retry, the parts to dead-letter, and fields for the batch log line.

A retried record is reported in `batchItemFailures`, comes back after the visibility timeout,
and reaches the dead-letter queue through the redrive policy once it has failed
`maxReceiveCount` times (`Delivery.last_attempt` tells a consumer it is the last). Dead
letters of a record that is retried wait for its last successful delivery. Every batch
writes one log line, `<queue> batch`, with what it did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import names
from chalicelib.messages import InvalidMessage
from chalicelib.observability import logger
from chalicelib.platform.queues import max_receive_count, queue_url, send_entries
from chalicelib.settings import get_settings

M = TypeVar("M")
_MAX_REASON = 1000


@dataclass(frozen=True)
class Source(Generic[M]):
    """A queue (its logical name) and the parser of its bodies into typed messages."""

    queue: str
    parse: Callable[[str], M]


@dataclass(frozen=True)
class Delivery(Generic[M]):
    """One received record, parsed."""

    message_id: str
    body: str
    receive_count: int
    last_attempt: bool  # a retry would send it to the dead-letter queue
    message: M


@dataclass(frozen=True)
class DeadLetter:
    """A message body for a dead-letter queue, with why and where from."""

    body: str
    reason: str
    source_message_id: str
    extra: dict[str, str] = field(default_factory=dict)  # more string attributes (e.g. reading_index)


@dataclass
class Outcome:
    """What a batch consumer did: records to retry, parts to dead-letter, log fields."""

    failed: set[str] = field(default_factory=set)
    dead: list[DeadLetter] = field(default_factory=list)
    log: dict[str, Any] = field(default_factory=dict)


def dead_letter_many(queue: str, letters: Sequence[DeadLetter]) -> None:
    """Put these on `queue`'s dead-letter queue, ten to a request; raises if any was refused."""
    source = get_settings().resource_name(queue)
    entries = []
    for letter in letters:
        attributes: dict[str, Any] = {
            "error_reason": {"DataType": "String", "StringValue": letter.reason[:_MAX_REASON] or "unknown"},
            "source_queue": {"DataType": "String", "StringValue": source},
            "source_message_id": {"DataType": "String", "StringValue": letter.source_message_id},
        }
        for name, value in letter.extra.items():
            attributes[name] = {"DataType": "String", "StringValue": value}
        entries.append({"MessageBody": letter.body, "MessageAttributes": attributes})
    send_entries(queue_url(names.dead_letter_queue(queue)), entries)


class _Pipeline(BatchProcessor, Generic[M]):
    """Powertools' SQS batch processor, handing the consumer the whole parsed batch at once."""

    def __init__(self, source: Source[M], handle_batch: Callable[[list[Delivery[M]]], Outcome]) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self._source = source
        self._handle_batch = handle_batch

    def process(self) -> list[tuple]:
        queue = self._source.queue
        records = [SQSRecord(raw) for raw in self.records]
        deliveries: list[Delivery[M]] = []
        outcome = Outcome()
        limit = max_receive_count(queue) if records else 0
        for record in records:
            receive_count = int(record.attributes.approximate_receive_count or 1)
            try:
                message = self._source.parse(record.body)
            except InvalidMessage as exc:
                outcome.dead.append(DeadLetter(record.body, str(exc), record.message_id))
                continue
            deliveries.append(Delivery(record.message_id, record.body, receive_count, receive_count >= limit, message))
        if deliveries:
            try:
                handled = self._handle_batch(deliveries)
            except Exception as exc:  # noqa: BLE001 - the whole batch comes back; nothing is lost
                logger.warning("batch failed; its records will be retried",
                               extra={"queue": queue, "error": f"{type(exc).__name__}: {exc}"})
                handled = Outcome(failed={d.message_id for d in deliveries})
            outcome.failed |= handled.failed
            outcome.dead += handled.dead
            outcome.log.update(handled.log)
        dead = [letter for letter in outcome.dead if letter.source_message_id not in outcome.failed]
        if dead:
            try:
                dead_letter_many(queue, dead)
                for letter in dead:
                    logger.warning("dead-lettered", extra={"queue": queue, "message_id": letter.source_message_id,
                                                           "reason": letter.reason, **letter.extra})
            except Exception as exc:  # noqa: BLE001 - their records come back and try again
                logger.warning("dead-lettering failed; the records will be retried",
                               extra={"queue": queue, "error": f"{type(exc).__name__}: {exc}"})
                outcome.failed |= {letter.source_message_id for letter in dead}
                dead = []
        logger.info(f"{queue} batch", extra={"queue": queue, "records": len(records), "retried": len(outcome.failed),
                                    "dead_lettered": len(dead), **outcome.log})
        results = []
        for record in records:
            if record.message_id in outcome.failed:
                results.append(self.failure_handler(record, (_Retried, _Retried(record.message_id), None)))
            else:
                results.append(self.success_handler(record, None))
        return results


class _Retried(Exception):
    """A record the consumer asked to see again (already logged where it failed)."""


def consume_batch(source: Source[M], event: Any, handle_batch: Callable[[list[Delivery[M]]], Outcome]) -> dict[str, Any]:
    """Run `handle_batch` on a Chalice SQS event's parsed records; returns Lambda's partial response."""
    return run(source, event.to_dict()["Records"], handle_batch)


def consume(source: Source[M], event: Any, handle: Callable[[M], None]) -> dict[str, Any]:
    """Run `handle` on every parsed record of a Chalice SQS event, each record failing alone."""
    return run(source, event.to_dict()["Records"], each(source.queue, handle))


def each(queue: str, handle: Callable[[M], None]) -> Callable[[list[Delivery[M]]], Outcome]:
    """A batch handler that hands the messages over one at a time, a failure failing its record alone."""

    def handle_batch(deliveries: list[Delivery[M]]) -> Outcome:
        outcome = Outcome()
        for delivery in deliveries:
            logger.append_keys(message_id=delivery.message_id)
            try:
                handle(delivery.message)
            except Exception as exc:  # noqa: BLE001 - this record is retried (or dead-lettered), the others go on
                _settle(queue, outcome, delivery, exc)
            finally:
                logger.remove_keys(["message_id"])
        return outcome

    return handle_batch


def together(queue: str, handle: Callable[[list[M]], Sequence[Exception | None]]
             ) -> Callable[[list[Delivery[M]]], Outcome]:
    """A batch handler that hands the whole batch over at once; `handle` answers, for each message,
    None or what failed it, and a failure fails its record alone."""

    def handle_batch(deliveries: list[Delivery[M]]) -> Outcome:
        outcome = Outcome()
        for delivery, failure in zip(deliveries, handle([d.message for d in deliveries]), strict=True):
            if failure is not None:
                _settle(queue, outcome, delivery, failure)
        return outcome

    return handle_batch


def _settle(queue: str, outcome: Outcome, delivery: Delivery[Any], failure: Exception) -> None:
    """A message that can never be handled is dead-lettered with its reason; any other failure
    brings its record back."""
    if isinstance(failure, InvalidMessage):
        outcome.dead.append(DeadLetter(delivery.body, str(failure), delivery.message_id))
        return
    logger.warning("record failed; it will be retried",
                   extra={"queue": queue, "error": f"{type(failure).__name__}: {failure}",
                          "receive_count": delivery.receive_count, "message_id": delivery.message_id})
    outcome.failed.add(delivery.message_id)


def run(source: Source[M], records: list[dict[str, Any]], handle_batch: Callable[[list[Delivery[M]]], Outcome]) -> dict[str, Any]:
    """Lambda's SQS records through the pipeline; `{"batchItemFailures": [...]}` out."""
    processor = _Pipeline(source, handle_batch)
    with processor(records=records, handler=lambda record: None):
        processor.process()
    return dict(processor.response())
