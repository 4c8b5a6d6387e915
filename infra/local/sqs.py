"""SQS event sources with Lambda's semantics, one per `@app.on_sqs_message`.

Each source has `concurrency` pollers; a poller long-polls the queue, gathers up to the
decorator's batch size within its batching window, invokes the consumer with Lambda's SQS
event, and then deletes what succeeded: every record when the function returns, none when
it raises (they come back after the visibility timeout and reach the dead-letter queue
through the queue's redrive policy), and all but the reported ones when it returns
`batchItemFailures` (an invalid report fails the whole batch, as Lambda does).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.local.endpoint import aws_client
from infra.local.lambdas import FunctionPool, InvocationError

log = logging.getLogger("ems.local.sqs")


@dataclass(frozen=True)
class EventSource:
    """One SQS event source mapping."""

    handler: str
    queue: str
    batch_size: int
    batching_window_s: float
    concurrency: int


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda hands it to a function."""
    attributes = {
        key: str(value)
        for key, value in message.get("Attributes", {}).items()
        if key
        in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "MessageGroupId",
            "MessageDeduplicationId",
            "SequenceNumber",
            "AWSTraceHeader",
        )
    }
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_ids(result: Any, message_ids: set[str]) -> set[str] | None:
    """The ids a `batchItemFailures` response reports; None when the report is invalid."""
    if not isinstance(result, dict) or "batchItemFailures" not in result:
        return set()
    failures = result["batchItemFailures"]
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    ids: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        ids.add(identifier)
    return ids


class SqsPoller:
    """The pollers of one event source."""

    def __init__(
        self,
        source: EventSource,
        pool: FunctionPool,
        endpoint_url: str | None,
        region: str,
        stop: threading.Event,
    ) -> None:
        self.source = source
        self._pool = pool
        self._endpoint_url = endpoint_url
        self._region = region
        self._stop = stop
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-{source.handler}-{i}", daemon=True)
            for i in range(source.concurrency)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))

    def _run(self) -> None:
        sqs = aws_client("sqs", self._endpoint_url, self._region)
        queue_url = queue_arn = None
        backoff_s = 1.0
        while not self._stop.is_set():
            try:
                if queue_url is None:
                    queue_url = sqs.get_queue_url(QueueName=self.source.queue)["QueueUrl"]
                    queue_arn = sqs.get_queue_attributes(
                        QueueUrl=queue_url, AttributeNames=["QueueArn"]
                    )["Attributes"]["QueueArn"]
                    backoff_s = 1.0
                messages = self._gather(sqs, queue_url)
                if messages:
                    assert queue_arn is not None
                    self._deliver(sqs, queue_url, queue_arn, messages)
            except (ClientError, BotoCoreError) as exc:
                # A missing queue or an endpoint that went away: say so, back off, retry.
                log.error("event source %s on %s: %s", self.source.handler, self.source.queue, exc)
                queue_url = None
                self._stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)
            except Exception:
                log.exception("event source %s failed; it goes on", self.source.handler)
                self._stop.wait(1.0)

    def _gather(self, sqs: Any, queue_url: str) -> list[dict[str, Any]]:
        """Up to batch_size messages: what one long poll gives, topped up within the window."""
        wanted = self.source.batch_size
        messages = self._receive(sqs, queue_url, min(wanted, 10), wait_s=1)
        if not messages or len(messages) >= wanted or self.source.batching_window_s <= 0:
            return messages
        deadline = time.monotonic() + self.source.batching_window_s
        while len(messages) < wanted and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = self._receive(sqs, queue_url, min(wanted - len(messages), 10), wait_s=min(int(left), 1))
            if not more and left < 1:
                break
            messages.extend(more)
        return messages

    def _receive(self, sqs: Any, queue_url: str, count: int, wait_s: int) -> list[dict[str, Any]]:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _deliver(self, sqs: Any, queue_url: str, queue_arn: str, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(m, queue_arn, self._region) for m in messages]}
        ids = {m["MessageId"] for m in messages}
        try:
            result = self._pool.invoke(self.source.handler, event)
        except InvocationError as exc:
            log.warning(
                "%s failed on a batch of %d; the batch returns after the visibility timeout: %s",
                self.source.handler, len(messages), exc,
            )
            return
        failed = failed_ids(result, ids)
        if failed is None:
            log.warning("%s returned an invalid batchItemFailures; the whole batch fails", self.source.handler)
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        if failed:
            log.info("%s: %d of %d records failed and will be retried", self.source.handler, len(failed), len(messages))
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            response = sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                log.warning("could not delete a processed message: %s", failure.get("Message"))
