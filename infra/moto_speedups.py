"""Make the embedded AWS (moto) scale like the real services where moto is accidentally quadratic.

The local stack, the end-to-end tests and the benchmarks run moto in-process. Two of its code paths cost time in
proportion to everything stored, so a long run slows down as it goes, which the real services do not:

* **DynamoDB Query on the table's own key** walks and sorts *every item of the table* to find one partition
  (``Table.query`` → ``Table.all_items``). DynamoDB reads only that partition. Patched: the query sees only the
  items of its partition; index queries and everything else are untouched.
* **SQS** builds a queue's whole attribute map (counting every message, visible, in flight and delayed) three
  times per message sent, only to read ``ContentBasedDeduplication``, and three times per message *received* (for
  ``MessageRetentionPeriod``), and twice per name asked of GetQueueAttributes. Patched: while a message is sent,
  the map holds just that one attribute; within one ReceiveMessage or GetQueueAttributes call, the map is built once
  (one snapshot per call, which is also what SQS answers).

What moto answers is unchanged (``tests/unit/test_moto_speedups.py`` compares patched and unpatched answers);
:func:`install` refuses to patch a moto whose internals no longer look as expected, rather than patch them wrongly.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

_installed = False
_lock = threading.Lock()
_local = threading.local()


class MotoChanged(RuntimeError):
    """moto's internals differ from what these patches were written against: update them or drop them."""


def install() -> None:
    """Patch moto in this process (idempotent, thread-safe)."""
    global _installed
    with _lock:
        if _installed:
            return
        _patch_dynamodb_query()
        _patch_sqs()
        _installed = True


def _patch_dynamodb_query() -> None:
    from moto.dynamodb.models.table import Table

    query: Callable[..., Any] = Table.query
    all_items: Callable[..., Any] = Table.all_items
    signature = inspect.signature(query)
    if not {"hash_key", "index_name"} <= set(signature.parameters) or not hasattr(Table, "all_items"):
        raise MotoChanged("moto's Table.query no longer takes hash_key/index_name")

    @functools.wraps(all_items)
    def partition_items(self: Table) -> Any:
        scoped = getattr(_local, "partition", None)
        if scoped is not None and scoped[0] is self:
            return scoped[1]
        return all_items(self)

    @functools.wraps(query)
    def partition_query(self: Table, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        if bound.arguments.get("index_name") or getattr(_local, "partition", None) is not None:
            return query(self, *args, **kwargs)
        partition = self.items.get(bound.arguments["hash_key"])  # .get: self.items is a defaultdict
        if partition is None:
            items: list[Any] = []
        elif self.range_key_attr:
            items = sorted(partition.values(), key=lambda item: item.range_key)
        else:
            items = [partition]
        _local.partition = (self, items)
        try:
            return query(self, *args, **kwargs)
        finally:
            _local.partition = None

    Table.all_items = partition_items  # type: ignore[method-assign]
    Table.query = partition_query  # type: ignore[method-assign]


def _patch_sqs() -> None:
    from moto.sqs.models import Queue, SQSBackend

    attributes = Queue.attributes
    if not isinstance(attributes, property) or attributes.fget is None:
        raise MotoChanged("moto's Queue.attributes is no longer a property")
    full_attributes: Callable[[Queue], dict[str, Any]] = attributes.fget

    def lean_attributes(self: Queue) -> dict[str, Any]:
        if getattr(_local, "sending", 0) and self.fifo_queue:
            value = self.content_based_deduplication
            return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}
        memo: dict[int, dict[str, Any]] | None = getattr(_local, "memo", None)
        if memo is None:
            return full_attributes(self)
        if id(self) not in memo:
            memo[id(self)] = full_attributes(self)
        return dict(memo[id(self)])

    def sending(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _local.sending = getattr(_local, "sending", 0) + 1
            try:
                return method(*args, **kwargs)
            finally:
                _local.sending -= 1

        return wrapper

    def one_snapshot(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if getattr(_local, "memo", None) is not None:
                return method(*args, **kwargs)
            _local.memo = {}
            try:
                return method(*args, **kwargs)
            finally:
                _local.memo = None

        return wrapper

    Queue.attributes = property(lean_attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = sending(SQSBackend.send_message)  # type: ignore[method-assign]
    SQSBackend.send_message_batch = sending(SQSBackend.send_message_batch)  # type: ignore[method-assign]
    SQSBackend.receive_message = one_snapshot(SQSBackend.receive_message)  # type: ignore[method-assign]
    SQSBackend.get_queue_attributes = one_snapshot(SQSBackend.get_queue_attributes)  # type: ignore[method-assign]
