"""`python -m infra dlq list|show|redrive` against a moto server.

Given the queue pair `ems-dlqtest-readings` + `ems-dlqtest-readings-dlq` (a redrive policy
between them), fresh for each test, with three dead-lettered readings carrying the attributes a
consumer adds (`error_reason`, `source_queue`, `source_message_id`) and one of their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.__main__ import main
from infra.dlq import queue_pair

PROJECT_DIR = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STAGE = "dlqtest"
SOURCE = f"ems-{STAGE}-readings"
DEAD_LETTERS = f"{SOURCE}-dlq"
BODIES = [
    json.dumps({"timestamp": "2026-01-01T00:00:00Z", "device_id": "d1", "measurement_value": -1}),
    json.dumps({"timestamp": "2026-01-01T00:10:00Z", "device_id": "d1", "measurement_value": "lots"}),
    "not json at all",
]
REASONS = ["measurement_value must be >= 0", "measurement_value is not a number", "invalid JSON"]


class Queues:
    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.source_url = sqs.get_queue_url(QueueName=SOURCE)["QueueUrl"]
        self.dead_letter_url = sqs.get_queue_url(QueueName=DEAD_LETTERS)["QueueUrl"]

    def depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

    def take_all(self, url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300, MessageAttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)
        return messages


@pytest.fixture
def queues(endpoint: str) -> Queues:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    for url in sqs.list_queues(QueueNamePrefix=f"ems-{STAGE}-").get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)  # moto allows one purge a minute; new queues are empty
    dead_letter_url = sqs.create_queue(QueueName=DEAD_LETTERS)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.create_queue(QueueName=SOURCE, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3}),
    })
    for number, (body, reason) in enumerate(zip(BODIES, REASONS, strict=True)):
        sqs.send_message(QueueUrl=dead_letter_url, MessageBody=body, MessageAttributes={
            "error_reason": {"DataType": "String", "StringValue": reason},
            "source_queue": {"DataType": "String", "StringValue": SOURCE},
            "source_message_id": {"DataType": "String", "StringValue": f"original-{number}"},
            "trace_id": {"DataType": "String", "StringValue": f"trace-{number}"},
        })
    return Queues(sqs)


def dlq(endpoint: str, *args: str) -> int:
    return main(["dlq", *args, "--stage", STAGE, "--endpoint-url", endpoint])


def test_list_shows_every_dead_letter_queue_of_the_stage_with_its_depth(
    queues: Queues, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dlq(endpoint, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["QUEUE", "MESSAGES", "IN_FLIGHT"]
    assert [line.split() for line in lines[1:]] == [[DEAD_LETTERS, "3", "0"]]  # the source queue is no DLQ


def test_show_prints_bodies_and_reasons_and_leaves_the_messages_there(
    queues: Queues, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the dead letters of `readings` are shown
    assert dlq(endpoint, "show", "readings") == 0
    out = capsys.readouterr().out
    # Then each body, reason and original message id is printed with its receive count and sent time
    for number, (body, reason) in enumerate(zip(BODIES, REASONS, strict=True)):
        assert f"body: {body}" in out
        assert f"error_reason: {reason}" in out
        assert f"source_message_id: original-{number}" in out
    assert out.count("receive count 1") == 3 and out.count("sent 20") == 3
    assert "3 message(s) shown from ems-dlqtest-readings-dlq" in out
    # And all three are still there, visible at once
    assert queues.depth(queues.dead_letter_url) == 3
    assert len(queues.take_all(queues.dead_letter_url)) == 3


def test_show_takes_the_dead_letter_queue_name_too_and_a_limit(
    queues: Queues, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dlq(endpoint, "show", "readings-dlq", "--limit", "2") == 0
    out = capsys.readouterr().out
    assert out.count("body: ") == 2 and "2 message(s) shown" in out
    assert queues.depth(queues.dead_letter_url) == 3


def test_redrive_moves_the_messages_back_without_the_error_attributes(
    queues: Queues, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the dead letters of `readings` are redriven
    assert dlq(endpoint, "redrive", "readings") == 0
    assert f"moved 3 message(s) from {DEAD_LETTERS} to {SOURCE}" in capsys.readouterr().out
    # Then the dead-letter queue is empty and the source queue holds the same bodies,
    # with their own attributes but none of those the dead-lettering added
    assert queues.depth(queues.dead_letter_url) == 0
    moved = queues.take_all(queues.source_url)
    assert sorted(message["Body"] for message in moved) == sorted(BODIES)
    for message in moved:
        assert set(message.get("MessageAttributes", {})) == {"trace_id"}


def test_redrive_with_a_limit_moves_only_that_many(
    queues: Queues, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dlq(endpoint, "redrive", "readings-dlq", "--limit", "2") == 0
    assert "moved 2 message(s)" in capsys.readouterr().out
    assert queues.depth(queues.dead_letter_url) == 1 and queues.depth(queues.source_url) == 2


def test_an_empty_dead_letter_queue_shows_and_redrives_nothing(
    queues: Queues, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for message in queues.take_all(queues.dead_letter_url):
        queues.sqs.delete_message(QueueUrl=queues.dead_letter_url, ReceiptHandle=message["ReceiptHandle"])
    assert dlq(endpoint, "show", "readings") == 0
    assert dlq(endpoint, "redrive", "readings") == 0
    out = capsys.readouterr().out
    assert "0 message(s) shown" in out and "moved 0 message(s)" in out


def test_an_unknown_queue_fails_with_a_message(
    queues: Queues, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert dlq(endpoint, "show", "nothing") == 1
    err = capsys.readouterr().err
    assert "ems-dlqtest-nothing-dlq" in err and "the queue does not exist" in err, err


@pytest.mark.parametrize(
    "args",
    [
        ["dlq"],
        ["dlq", "peek", "readings"],
        ["dlq", "show"],
        ["dlq", "show", "bad name!"],
        ["dlq", "show", "readings", "--limit", "0"],
        ["dlq", "redrive", "readings", "--limit", "many"],
        ["dlq", "list", "--stage", "Not_A_Stage"],
    ],
)
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_an_unreachable_endpoint_exits_1_with_a_message_and_no_traceback() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "EMS_"))}
    result = subprocess.run(
        [sys.executable, "-m", "infra", "dlq", "list", "--stage", STAGE, "--endpoint-url", "http://127.0.0.1:9"],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["readings", "readings-dlq", "ems-dlqtest-readings", "ems-dlqtest-readings-dlq"])
def test_a_queue_is_named_by_its_logical_or_full_name(name: str) -> None:
    assert queue_pair(name, STAGE) == (SOURCE, DEAD_LETTERS)
