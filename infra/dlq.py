"""`python -m infra dlq list|show|redrive`: inspect and redrive a stage's dead-letter queues.

A queue `ems-{stage}-{name}` hands what it cannot process to `ems-{stage}-{name}-dlq`; a consumer
that rejects a message puts it there itself with `error_reason`, `source_queue` and
`source_message_id` attributes. `show` looks without consuming: it receives with a short
visibility timeout and makes the messages visible again at once (each look still counts as a
receive). `redrive` is receive, send to the source queue without the error attributes, delete:
moto has no StartMessageMoveTask, and this works on every endpoint alike.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TextIO

from botocore.config import Config

from infra import InfraError, aws_session, failing_as

DLQ_SUFFIX = "-dlq"
PEEK_VISIBILITY_S = 30  # how long `show` hides a message if it dies before making it visible again
MOVE_VISIBILITY_S = 60
# Attributes a dead-lettering consumer adds; a redriven message starts clean without them.
ERROR_ATTRIBUTES = frozenset({"error_reason", "source_queue", "source_message_id"})
_QUEUE_ARGUMENT = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_MISSING_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})


class DeadLetterError(InfraError):
    """A dead-letter command failed; the message says why."""


@dataclass(frozen=True)
class QueueDepth:
    name: str
    visible: int
    in_flight: int


@dataclass(frozen=True)
class DeadLetter:
    """One message of a dead-letter queue, as `show` prints it."""

    message_id: str
    body: str
    attributes: dict[str, str]
    receive_count: int | None
    sent_at: dt.datetime | None

    @property
    def error_reason(self) -> str | None:
        return self.attributes.get("error_reason")

    @property
    def source_message_id(self) -> str | None:
        return self.attributes.get("source_message_id")


@dataclass(frozen=True)
class RedriveResult:
    dead_letter_queue: str
    source_queue: str
    moved: int
    failed: list[str]


def queue_pair(queue: str, stage: str) -> tuple[str, str]:
    """(source, dead-letter) queue names for `readings`, `readings-dlq` or their full names."""
    prefix = f"ems-{stage}-"
    logical = queue.removeprefix(prefix)
    logical = logical.removesuffix(DLQ_SUFFIX)
    if not logical:
        raise DeadLetterError(f"{queue!r} names no queue")
    return prefix + logical, prefix + logical + DLQ_SUFFIX


def _step(description: str) -> AbstractContextManager[None]:
    """The endpoint's errors as a `DeadLetterError` saying what was being done."""
    return failing_as(DeadLetterError, description,
                      dict.fromkeys(_MISSING_QUEUE_CODES, "the queue does not exist"))


class DeadLetters:
    """The dead-letter queues of one stage, through an injected SQS client."""

    def __init__(self, sqs: Any, stage: str) -> None:
        self.sqs = sqs
        self.stage = stage

    @classmethod
    def connect(cls, stage: str, region: str, endpoint_url: str | None) -> DeadLetters:
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        return cls(aws_session(region, endpoint_url, stage).client("sqs", endpoint_url=endpoint_url, config=config), stage)

    def queues(self) -> list[QueueDepth]:
        """Every dead-letter queue of the stage, by name, with its depth."""
        prefix = f"ems-{self.stage}-"
        with _step(f"listing the queues {prefix}*"):
            urls: list[str] = []
            for page in self.sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix, MaxResults=1000):
                urls.extend(page.get("QueueUrls", []))
        depths = []
        for url in urls:
            name = url.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith(prefix) and name.endswith(DLQ_SUFFIX):
                visible, in_flight = self._depth(url, name)
                depths.append(QueueDepth(name, visible, in_flight))
        return sorted(depths, key=lambda depth: depth.name)

    def show(self, queue: str, limit: int) -> tuple[str, list[DeadLetter]]:
        """Up to `limit` messages of `queue`'s dead-letter queue, left in the queue."""
        _, dead_letter_queue = queue_pair(queue, self.stage)
        url = self._url(dead_letter_queue)
        received: list[dict[str, Any]] = []
        try:
            while len(received) < limit:
                batch = self._receive(url, dead_letter_queue, min(10, limit - len(received)), PEEK_VISIBILITY_S)
                if not batch:
                    break
                received.extend(batch)
        finally:
            self._make_visible(url, dead_letter_queue, received)
        return dead_letter_queue, [_dead_letter(message) for message in received]

    def redrive(self, queue: str, limit: int | None) -> RedriveResult:
        """Move up to `limit` (default: all there are now) messages back to their source queue."""
        source_queue, dead_letter_queue = queue_pair(queue, self.stage)
        dead_letter_url = self._url(dead_letter_queue)
        source_url = self._url(source_queue)
        # Messages that fail again may come back while this runs: take no more than were there.
        visible, _ = self._depth(dead_letter_url, dead_letter_queue)
        budget = visible if limit is None else min(limit, visible)
        moved = 0
        failed: list[str] = []
        while moved + len(failed) < budget:
            batch = self._receive(
                dead_letter_url, dead_letter_queue, min(10, budget - moved - len(failed)), MOVE_VISIBILITY_S
            )
            if not batch:
                break
            entries = [
                {"Id": str(index), "MessageBody": message["Body"], "MessageAttributes": _resend_attributes(message)}
                for index, message in enumerate(batch)
            ]
            with _step(f"sending to {source_queue}"):
                sent = self.sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
            done = {entry["Id"] for entry in sent.get("Successful", [])}
            for failure in sent.get("Failed", []):
                message = batch[int(failure["Id"])]
                failed.append(f"{message['MessageId']}: {failure.get('Code')}: {failure.get('Message', '')}")
            moved_now = [message for index, message in enumerate(batch) if str(index) in done]
            self._delete(dead_letter_url, dead_letter_queue, moved_now)
            self._make_visible(
                dead_letter_url, dead_letter_queue, [m for i, m in enumerate(batch) if str(i) not in done]
            )
            moved += len(moved_now)
        return RedriveResult(dead_letter_queue, source_queue, moved, failed)

    # --- SQS calls ---

    def _url(self, name: str) -> str:
        with _step(f"finding the queue {name}"):
            return str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def _depth(self, url: str, name: str) -> tuple[int, int]:
        with _step(f"reading the depth of {name}"):
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            )["Attributes"]
        return (
            int(attributes.get("ApproximateNumberOfMessages", 0)),
            int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        )

    def _receive(self, url: str, name: str, count: int, visibility_s: int) -> list[dict[str, Any]]:
        with _step(f"receiving from {name}"):
            response = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=count,
                VisibilityTimeout=visibility_s,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            )
        return list(response.get("Messages", []))

    def _make_visible(self, url: str, name: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                for index, message in enumerate(messages[start : start + 10])
            ]
            with _step(f"making messages of {name} visible again (they reappear within {PEEK_VISIBILITY_S} s)"):
                self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)

    def _delete(self, url: str, name: str, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [{"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(messages)]
        with _step(f"deleting moved messages from {name} (they are now in both queues)"):
            response = self.sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        if response.get("Failed"):
            raise DeadLetterError(
                f"{len(response['Failed'])} moved message(s) could not be deleted from {name}; "
                "they are now in both queues"
            )


def _string_attributes(message: dict[str, Any]) -> dict[str, str]:
    values = {}
    for key, value in (message.get("MessageAttributes") or {}).items():
        if "StringValue" in value:
            values[key] = str(value["StringValue"])
        elif "BinaryValue" in value:
            values[key] = f"<{len(value['BinaryValue'])} bytes>"
    return values


def _resend_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """The message's own attributes, without those the dead-lettering added."""
    attributes = {}
    for key, value in (message.get("MessageAttributes") or {}).items():
        if key in ERROR_ATTRIBUTES:
            continue
        attributes[key] = {
            name: value[name] for name in ("DataType", "StringValue", "BinaryValue") if name in value
        }
    return attributes


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    system = message.get("Attributes") or {}
    sent_ms = system.get("SentTimestamp")
    count = system.get("ApproximateReceiveCount")
    return DeadLetter(
        message_id=message["MessageId"],
        body=message.get("Body", ""),
        attributes=_string_attributes(message),
        receive_count=int(count) if count is not None else None,
        sent_at=dt.datetime.fromtimestamp(int(sent_ms) / 1000, dt.UTC) if sent_ms is not None else None,
    )


# --- the command ---------------------------------------------------------------------------


def _queue_argument(value: str) -> str:
    if not _QUEUE_ARGUMENT.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"invalid queue {value!r}: a logical name such as readings or readings-dlq"
        )
    return value


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid limit {value!r}: a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"invalid limit {value!r}: at least 1")
    return number


def add_parser(
    commands: Any,
    *,
    stage_type: Callable[[str], str],
    default_stage: str,
    default_region: str,
    default_endpoint: str | None,
) -> argparse.ArgumentParser:
    """Add `dlq list|show|redrive` to the `python -m infra` subcommands."""
    dlq: argparse.ArgumentParser = commands.add_parser("dlq", help="list, show and redrive the stage's dead-letter queues")
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--stage", type=stage_type, default=default_stage, help="default: %(default)s")
        sub.add_argument("--region", default=default_region, help="default: %(default)s")
        sub.add_argument(
            "--endpoint-url",
            "--endpoint",
            dest="endpoint",
            default=default_endpoint,
            help="AWS-compatible endpoint URL (default: $AWS_ENDPOINT_URL, %(default)s; none means AWS)",
        )

    common(actions.add_parser("list", help="every dead-letter queue of the stage with its depth"))
    show = actions.add_parser("show", help="print a dead-letter queue's messages, leaving them there")
    show.add_argument("queue", type=_queue_argument, metavar="QUEUE", help="e.g. readings (or readings-dlq)")
    show.add_argument("--limit", type=_positive, default=10, help="messages at most (default: %(default)s)")
    common(show)
    redrive = actions.add_parser("redrive", help="move a dead-letter queue's messages back to their queue")
    redrive.add_argument("queue", type=_queue_argument, metavar="QUEUE", help="e.g. readings (or readings-dlq)")
    redrive.add_argument("--limit", type=_positive, default=None, help="messages at most (default: all)")
    common(redrive)
    return dlq


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Carry out a parsed `dlq` command; raises `DeadLetterError` on failure."""
    out = out or sys.stdout
    dead_letters = DeadLetters.connect(args.stage, args.region, args.endpoint)
    if args.dlq_command == "list":
        depths = dead_letters.queues()
        if not depths:
            print(f"no dead-letter queues for stage {args.stage}", file=out)
            return 0
        width = max(len(depth.name) for depth in depths)
        print(f"{'QUEUE':<{width}}  MESSAGES  IN_FLIGHT", file=out)
        for depth in depths:
            print(f"{depth.name:<{width}}  {depth.visible:>8}  {depth.in_flight:>9}", file=out)
        return 0
    if args.dlq_command == "show":
        name, messages = dead_letters.show(args.queue, args.limit)
        for number, message in enumerate(messages, 1):
            sent = message.sent_at.strftime("%Y-%m-%dT%H:%M:%SZ") if message.sent_at else "?"
            print(f"[{number}] {message.message_id}  sent {sent}  receive count {message.receive_count}", file=out)
            for key in ("error_reason", "source_message_id"):
                if key in message.attributes:
                    print(f"    {key}: {message.attributes[key]}", file=out)
            for key, value in sorted(message.attributes.items()):
                if key not in ("error_reason", "source_message_id"):
                    print(f"    {key}: {value}", file=out)
            print(f"    body: {message.body}", file=out)
        print(
            f"{len(messages)} message(s) shown from {name}; they stay in the queue "
            "(looking counts as a receive)",
            file=out,
        )
        return 0
    if args.dlq_command == "redrive":
        result = dead_letters.redrive(args.queue, args.limit)
        print(f"moved {result.moved} message(s) from {result.dead_letter_queue} to {result.source_queue}", file=out)
        if result.failed:
            for failure in result.failed:
                print(f"not moved: {failure}", file=sys.stderr)
            raise DeadLetterError(f"{len(result.failed)} message(s) could not be moved; they stay in the queue")
        return 0
    raise DeadLetterError(f"unknown dlq action {args.dlq_command}")
