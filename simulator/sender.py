"""Readings to SQS: batches of ten messages, retries with exponential backoff, and pacing on queue depth.

A message holds one reading (the original format) or, with `readings_per_message` above one,
a batch message `{"readings": [...]}` of up to that many: one message, not one per reading.

The SQS client is injected (boto3's, or a fake in tests). While the endpoint is unreachable or
throttling, a call is retried until it succeeds or a stop is requested, so no reading is lost;
entries a batch reports as failed are resent a few times. A batch whose response was lost may
be sent twice: the backend keeps the first value per device and timestamp, so that is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from simulator.clock import Stopper
from simulator.messages import Reading

BATCH_SIZE = 10  # SQS's limit per SendMessageBatch
# Ten messages of this many readings stay well under SQS's 256 KB per SendMessageBatch (~100 B a reading).
MAX_READINGS_PER_MESSAGE = 200
_RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "KmsThrottled",
    }
)
_MISSING_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


class SenderError(Exception):
    """Sending cannot go on (no such queue, no permission); the text is for the person running it."""


class StoppedError(Exception):
    """A stop was requested while waiting to retry."""


def is_retryable(error: Exception) -> bool:
    """Connection failures, throttling and server-side errors: worth trying again."""
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in _RETRYABLE_CODES or status == 429 or status >= 500
    return False


def describe(error: Exception) -> str:
    """A one-line account of an AWS error."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
    return str(error) or type(error).__name__


class Retrier:
    """Calls an AWS operation until it succeeds, backing off exponentially on retryable errors."""

    def __init__(
        self,
        stopper: Stopper,
        notify: Callable[[str], None],
        *,
        initial_backoff_s: float = 0.25,
        max_backoff_s: float = 8.0,
    ) -> None:
        self.stopper = stopper
        self.notify = notify
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.retries = 0

    def backoff_s(self, attempt: int) -> float:
        """The wait before retry number `attempt` (1-based)."""
        return float(min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempt - 1)))

    def call(self, operation: Callable[..., Any], **kwargs: Any) -> Any:
        """`operation(**kwargs)`; raises SenderError on a permanent error, StoppedError on a stop."""
        attempt = 0
        while True:
            try:
                result = operation(**kwargs)
            except Exception as exc:  # noqa: BLE001 - sorted into retryable and permanent below
                if not is_retryable(exc):
                    code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else None
                    if code in _MISSING_QUEUE_CODES:
                        raise SenderError(f"the queue does not exist ({describe(exc)})") from None
                    raise SenderError(describe(exc)) from None
                attempt += 1
                self.retries += 1
                delay_s = self.backoff_s(attempt)
                self.notify(f"retry {attempt} in {delay_s:.2f} s: {describe(exc)}")
                if not self.stopper.sleep(delay_s):
                    raise StoppedError from None
                continue
            if attempt:
                self.notify(f"endpoint answered again after {attempt} retr{'y' if attempt == 1 else 'ies'}")
            return result


def resolve_queue_url(client: Any, queue_name: str, retrier: Retrier) -> str:
    """The URL of `queue_name`, waiting for the endpoint if it is down."""
    return str(retrier.call(client.get_queue_url, QueueName=queue_name)["QueueUrl"])


@dataclass
class SendStats:
    sent: int = 0
    failed: int = 0


def message_body(readings: list[Reading]) -> str:
    """One reading as the original message, several as a batch message."""
    if len(readings) == 1:
        return readings[0].to_message()
    return '{"readings": [' + ", ".join(r.to_message() for r in readings) + "]}"


class Sender:
    """Buffers readings and sends them ten messages at a time, keeping the queue near `max_queue_depth` at most."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        retrier: Retrier,
        *,
        max_queue_depth: int = 1000,
        readings_per_message: int = 1,
        max_entry_attempts: int = 5,
        depth_poll_s: float = 0.5,
        depth_check_every: int = 5,
    ) -> None:
        self.client = client
        self.queue_url = queue_url
        self.retrier = retrier
        self.max_queue_depth = max_queue_depth
        if not 1 <= readings_per_message <= MAX_READINGS_PER_MESSAGE:
            raise ValueError(f"readings_per_message must be 1-{MAX_READINGS_PER_MESSAGE}")
        self.readings_per_message = readings_per_message
        self.max_entry_attempts = max_entry_attempts
        self.depth_poll_s = depth_poll_s
        # Asking for the depth costs a request too (and moto answers slower as a queue deepens):
        # every few batches keeps the overshoot at a few dozen messages.
        self.depth_check_every = depth_check_every
        self._batches = 0
        self.stats = SendStats()
        self._buffer: list[Reading] = []
        self._buffered_since = 0.0

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def pending_age_s(self) -> float:
        """How long the oldest buffered reading has waited (0 when none)."""
        return time.monotonic() - self._buffered_since if self._buffer else 0.0

    def drop_pending(self) -> int:
        """Forget the buffered readings (sending cannot go on); returns how many there were."""
        dropped, self._buffer = len(self._buffer), []
        return dropped

    @property
    def batch_readings(self) -> int:
        """Readings in one full SendMessageBatch."""
        return BATCH_SIZE * self.readings_per_message

    def add(self, reading: Reading) -> None:
        """Queue one reading; a full batch goes out at once."""
        if not self._buffer:
            self._buffered_since = time.monotonic()
        self._buffer.append(reading)
        if len(self._buffer) >= self.batch_readings:
            self.flush()

    def flush(self) -> None:
        """Send what is buffered (at most one batch)."""
        batch, self._buffer = self._buffer[:self.batch_readings], self._buffer[self.batch_readings:]
        self._buffered_since = time.monotonic()
        if batch:
            self._send_batch(batch)

    def _send_batch(self, batch: list[Reading]) -> None:
        size = self.readings_per_message
        pending = {str(index): batch[start:start + size] for index, start in enumerate(range(0, len(batch), size))}
        attempt = 0
        try:
            self.wait_for_room()
            while pending:
                attempt += 1
                entries = [{"Id": key, "MessageBody": message_body(group)} for key, group in pending.items()]
                response = self.retrier.call(self.client.send_message_batch, QueueUrl=self.queue_url, Entries=entries)
                for done in response.get("Successful", []):
                    group = pending.pop(done["Id"], None)
                    if group is not None:
                        self.stats.sent += len(group)
                if not pending:
                    return
                reasons = {f"{failure.get('Code', 'error')}: {failure.get('Message', '')}"
                           for failure in response.get("Failed", [])}
                left = sum(len(group) for group in pending.values())
                if attempt >= self.max_entry_attempts:
                    self.retrier.notify(f"gave up on {left} reading(s): {'; '.join(sorted(reasons))}")
                    break
                delay_s = self.retrier.backoff_s(attempt)
                self.retrier.notify(f"resending {left} failed reading(s) in {delay_s:.2f} s")
                if not self.retrier.stopper.sleep(delay_s):
                    break
        except StoppedError:
            pass
        except SenderError:
            self.stats.failed += sum(len(group) for group in pending.values())
            raise
        self.stats.failed += sum(len(group) for group in pending.values())

    def queue_depth(self) -> int:
        attributes = self.retrier.call(
            self.client.get_queue_attributes, QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))

    def wait_for_room(self) -> None:
        """Before every `depth_check_every`-th batch, wait while the queue holds more than
        `max_queue_depth` messages (0: never wait). After a stop request it returns at once.
        """
        if self.max_queue_depth <= 0 or self.retrier.stopper.requested:
            return
        self._batches += 1
        if (self._batches - 1) % self.depth_check_every:
            return
        while self.queue_depth() > self.max_queue_depth:
            if not self.retrier.stopper.sleep(self.depth_poll_s):
                return
