"""What one silent check costs against DynamoDB and SQS (moto in-process): the endpoint operations
are counted with botocore's event hooks, and they must not grow with the healthy fleet, nor scan."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import boto3

from chalicelib import aws, names
from chalicelib.messages import parse_silent_check
from chalicelib.monitoring.alerts import DynamoRaisedAlerts
from chalicelib.monitoring.domain import deadline_key, deadline_shard
from chalicelib.monitoring.replica import MeterItem
from chalicelib.monitoring.silent import QUEUE, SilenceWatch
from chalicelib.monitoring.totals import DynamoHourTotals, HourTotalItem
from chalicelib.platform import queues
from tests.aws_calls import counted_calls
from tests.faked_stage import REGION, faked_stage

NOW = dt.datetime(2026, 11, 23, 20, 45, tzinfo=dt.UTC)
SILENT = 10


@contextmanager
def stage() -> Iterator[str]:
    with faked_stage() as name:
        sqs = boto3.client("sqs", region_name=REGION)
        for queue in (QUEUE, "notifications"):
            sqs.create_queue(QueueName=names.resource_name(queue, name))
        queues.queue_url.cache_clear()
        yield name
        queues.queue_url.cache_clear()


def seed(healthy: int) -> None:
    """`healthy` meters that reported a minute ago and SILENT that went quiet an hour ago."""
    with MeterItem.batch_write() as meters, HourTotalItem.batch_write() as hours:
        for i in range(healthy + SILENT):
            device_id = f"m{i:05d}"
            quiet = i < SILENT
            last = NOW - (dt.timedelta(hours=1) if quiet else dt.timedelta(minutes=1))
            meters.save(MeterItem(device_id, name=device_id, max_hourly_kwh=1, entity_version=1))
            hours.save(HourTotalItem(
                device_id, last.strftime("%Y-%m-%dT%H:00:00Z"), reading_count=1,
                vals={f"{last.strftime('%Y-%m-%dT%H:%M:%SZ')}=0.1"}, seen={last.strftime("%Y-%m-%dT%H:%M:%SZ")},
                silent_at=deadline_key(last + dt.timedelta(minutes=30)), silent_shard=str(deadline_shard(device_id))))


def counted_check() -> tuple[Counter[str], int]:
    """Run a whole check (the schedule, then every shard message from the queue); the operations
    it made, by name, and the alerts it raised."""
    with counted_calls("dynamodb", "sqs") as calls:
        watch = SilenceWatch(DynamoHourTotals(), DynamoRaisedAlerts(), clock=lambda: NOW)
        watch.start()
        sqs, url, raised = aws.client("sqs"), queues.queue_url(QUEUE), 0
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                raised += watch.check(parse_silent_check(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return calls, raised


def check_of(healthy: int) -> tuple[Counter[str], Counter[str]]:
    """The operations of a check over `healthy` healthy meters and SILENT quiet ones, then of a second."""
    with stage():
        seed(healthy)
        first, raised = counted_check()
        assert raised == SILENT
        second, raised_again = counted_check()
        assert raised_again == 0
        return first, second


def test_a_check_costs_what_is_due_not_what_the_fleet_holds() -> None:
    small, small_again = check_of(100)
    large, large_again = check_of(2000)

    assert large == small and large_again == small_again  # twenty times the healthy fleet: the same calls
    assert small["Scan"] == 0
    # Per shard one index page and one replica read; per silent meter its latest hour, the alert's
    # put and mark, its fleet status and its dropped deadline.
    dynamodb = sum(n for op, n in small.items() if op in {"Query", "GetItem", "BatchGetItem", "PutItem", "UpdateItem"})
    assert dynamodb <= 8 * 2 + SILENT * 5, small
    # The silent ones were looked at and left the index: a second check reads one page a shard.
    assert small_again["Query"] == 8 and small_again["UpdateItem"] == small_again["PutItem"] == 0, small_again
