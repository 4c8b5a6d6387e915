"""A transaction whose writes carry labels, so that a cancelled one names the writes whose
conditions failed (a taken name, a changed version, …) and the caller can say which."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from chalicelib.platform import outbox, persistence


class LabelledWrites:
    """A transaction's writes, each with its label, kept in the order DynamoDB gets them (pynamodb
    sends the deletes, then the puts, then the updates), which its cancellation reasons follow.
    Staged events are labelled `plain`."""

    def __init__(self, plain: str = "plain") -> None:
        self._plain = plain
        self._tx: TransactWrite | None = None
        self._deletes: list[str] = []
        self._puts: list[str] = []
        self._updates: list[str] = []

    def begin(self, tx: TransactWrite) -> LabelledWrites:
        self._tx = tx
        return self

    @property
    def tx(self) -> TransactWrite:
        if self._tx is None:
            raise RuntimeError("begin(tx) first")
        return self._tx

    def delete(self, model: Model, label: str, condition: Any = None) -> None:
        self.tx.delete(model, condition=condition)
        self._deletes.append(label)

    def save(self, model: Model, label: str, condition: Any = None) -> None:
        self.tx.save(model, condition=condition)
        self._puts.append(label)

    def update(self, model: Model, label: str, actions: list[Any], condition: Any = None) -> None:
        self.tx.update(model, actions=actions, condition=condition)
        self._updates.append(label)

    def stage(self, entries: Sequence[outbox.Entry]) -> None:
        outbox.stage(self.tx, entries)
        self._puts.extend(self._plain for _ in entries)

    def count(self) -> int:
        return len(self._deletes) + len(self._puts) + len(self._updates)

    def failed(self, exc: TransactWriteError) -> set[str]:
        """The labels of the writes whose conditions failed (empty: cancelled for another reason)."""
        labels = self._deletes + self._puts + self._updates
        reasons = [str(r.code if r else "") for r in (exc.cancellation_reasons or [])]
        return {labels[i] for i, code in enumerate(reasons) if code == "ConditionalCheckFailed" and i < len(labels)}


@contextmanager
def labelled(conflict: Callable[[set[str]], Exception], plain: str = "plain") -> Iterator[LabelledWrites]:
    """One transaction of labelled writes; when conditions fail, the error `conflict` makes of
    the failed writes' labels is raised (a cancellation for another reason is raised as it is)."""
    writes = LabelledWrites(plain)
    try:
        with persistence.transaction() as tx:
            yield writes.begin(tx)
    except TransactWriteError as exc:
        failed = writes.failed(exc)
        if not failed:
            raise
        raise conflict(failed) from exc
