"""The transactional outbox: an event is written in the same DynamoDB transaction as the change it
announces, then published at least once.

A context's repository adds `stage(tx, entries)` to the transaction of its change; after the commit
the service calls `Outbox.deliver(entries)`, which publishes each event at once and removes its
item. If the function dies between the commit and the publish, or the event bus refuses the
publish, the item stays: the relay (`Outbox.relay`, a schedule that runs on AWS and in the local
runtime alike) publishes every item older than a grace period. No crash point loses an event; a
crash after the publish and before the removal sends it twice, which consumers already take (they
compare entity versions, and a repeated or late older event changes nothing).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError
from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.transactions import TransactWrite

from chalicelib import names
from chalicelib.messages import SyncEvent
from chalicelib.observability import logger
from chalicelib.platform import persistence
from chalicelib.platform.publisher import Publisher

# The topics whose events go through the outbox; the relay reads one partition for each.
TOPICS = ("identity-events", "devices-events")
RELAY_PAGE = 100


class OutboxItem(persistence.Item):
    """One event waiting to be published: partition = topic, sort key = `<occurred_at>#<event_id>`."""

    class Meta:
        table_name = names.resource_name("outbox")

    topic = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    message = UnicodeAttribute()


@dataclass(frozen=True)
class Entry:
    """An event bound for `topic`, with its id and time fixed, so every publish of it is the same."""

    topic: str
    event: SyncEvent

    @property
    def key(self) -> str:
        return f"{self.event.occurred_at}#{self.event.event_id}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _timestamp(moment: dt.datetime) -> str:
    # A fixed width (microseconds always written), so keys sort in time order.
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry(topic: str, kind: str, entity_id: str, entity_version: int, data: dict[str, Any]) -> Entry:
    """A new event of type `kind` about one entity at one version, bound for `topic`."""
    if topic not in TOPICS:
        raise ValueError(f"{topic!r} is not an outbox topic")
    return Entry(topic, SyncEvent(type=kind, event_id=str(uuid.uuid4()), entity_id=entity_id,
                                  entity_version=entity_version, occurred_at=_timestamp(_now()), data=data))


def stage(tx: TransactWrite, entries: Iterable[Entry]) -> None:
    """Write `entries` in the transaction `tx`: they commit, or fail, with the change."""
    for item in entries:
        tx.save(OutboxItem(item.topic, item.key, message=item.event.body()),
                condition=OutboxItem.key.does_not_exist())


def _entry_of(item: OutboxItem) -> Entry:
    return Entry(item.topic, SyncEvent.model_validate_json(item.message))


class EventDelivery(Protocol):
    """What a service needs of the outbox once its change is committed: publish these events now."""

    def deliver(self, entries: Sequence[Entry]) -> None: ...


class Outbox:
    """Publishes staged events and removes them; the relay publishes what was left behind."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    def deliver(self, entries: Sequence[Entry]) -> None:
        """Publish events whose change has committed. A failure leaves the event to the relay: the
        change stands, so the caller is not told it failed."""
        for item in self._publish(entries):
            logger.warning("event left in the outbox for the relay",
                           extra={"topic": item.topic, "type": item.event.type, "entity_id": item.event.entity_id})

    def relay(self, grace_s: float, now: dt.datetime | None = None) -> int:
        """Publish every staged event older than `grace_s` (its function died, or the bus refused
        it); the number published. An event that fails again stays for the next run."""
        cutoff = _timestamp((now or _now()) - dt.timedelta(seconds=grace_s))
        published = 0
        for topic in TOPICS:
            results = OutboxItem.query(topic, OutboxItem.key < cutoff, consistent_read=True, page_size=RELAY_PAGE)
            for page in results.page_iter:
                late = [_entry_of(OutboxItem.from_raw_data(raw)) for raw in page.get("Items", [])]
                failed = self._publish(late)
                published += len(late) - len(failed)
                for item in late:
                    if item not in failed:
                        logger.warning("a staged event was published by the relay",
                                       extra={"topic": topic, "type": item.event.type,
                                              "entity_id": item.event.entity_id, "occurred_at": item.event.occurred_at})
        return published

    def _publish(self, entries: Sequence[Entry]) -> list[Entry]:
        """Publish `entries` (by topic, in batches) and remove the published ones' items; the
        entries left unpublished."""
        published: list[Entry] = []
        unpublished: list[Entry] = []
        for topic in dict.fromkeys(item.topic for item in entries):
            batch = [item for item in entries if item.topic == topic]
            refused = {event.event_id for event in self._publisher.publish(topic, [item.event for item in batch])}
            for item in batch:
                (unpublished if item.event.event_id in refused else published).append(item)
        try:
            persistence.delete_all(OutboxItem, (OutboxItem(item.topic, item.key) for item in published))
        except (PynamoDBException, BotoCoreError) as exc:
            # Published, so nothing is lost: the relay publishes them once more (consumers dedupe).
            logger.warning("published events stay in the outbox", extra={"count": len(published), "error": str(exc)})
        return unpublished
