"""Per-realm request budget for the QuickBooks Online API, shared by every concurrent Lambda.

Intuit's limits: 500 requests/min per realm, 10 requests/s per realm+app, 40 batch calls/min per realm+app
(120/min per realm across apps). A batch call counts as a request too. Exceeding them earns a 429 (fault 3001)
and Intuit asks to wait 60 s, so it is much cheaper to stay under them than to bounce off them.

:class:`RealmLimiter` is the port: ``acquire(realm_id, batch=...)`` returns when the call may go, sleeping if the
current window is full; if it cannot be admitted within ``max_wait`` seconds it raises
:class:`~qbsync.qbo.errors.RealmBudgetExhausted` (a :class:`~qbsync.qbo.errors.Throttled` carrying
``retry_after``) so the SQS worker returns the message to the queue instead of burning Lambda time.

* :class:`MemoryRealmLimiter` - exact sliding windows in one process (tests, the local stack).
* :class:`DynamoRealmLimiter` - fixed-window counters in the single table, shared by all Lambdas.

**Why fixed windows in DynamoDB.** One conditional ``UpdateItem`` per call on the realm's minute item (``ADD`` 1 to
the minute count, to the count of the second within that minute, and for a batch call to the batch count, if each
is under its limit) is atomic, needs no read, no lock and no clean-up (TTL removes old windows). A sliding log
would need a read-modify-write transaction per call. The price is the classic edge burst: a fixed window only
bounds calls *per window*, so up to 2x the budget can pass in a sliding interval straddling two windows. Hence
the default :class:`RealmBudget` stays under Intuit's numbers:

* 9/s: edge bursts can reach 18 in a sliding second (Intuit's exact measurement is undocumented); a rare 429
  is then handled by the client's retry with the same requestid.
* 480/min: because every call also needs a per-second slot, any sliding 60 s holds at most 61 one-second windows
  x 9 = 549 calls, and that only at a minute edge under sustained saturation; sustained throughput is ≤ 480/min.
  A strict sliding guarantee would need ``per_second=8`` (61 x 8 = 488 < 500).
* 36 batch/min: 10 % under 40; edge bursts of up to 72 batch calls across a minute boundary are possible.

A failed condition writes nothing, so contention costs no budget; the old item it returns says which window is full
and so how long to wait.

DynamoDB items (single table; the lead moves these builders into ``qbsync.store.keys``):

| item           | PK                   | SK                  | attributes                              |
|----------------|----------------------|---------------------|-----------------------------------------|
| minute window  | `QBOLIMIT#<realm>`   | `M#<epoch minute>`  | `count` (N, the minute's calls), `s00`…`s59` (N, |
|                |                      |                     | calls in that second), `batch` (N), `entity`, TTL |

``<epoch minute>`` is ``floor(epoch_seconds / 60)``. Windows use wall-clock time (``time.time``), so Lambdas agree
on them to within their clock skew (NTP: milliseconds).
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from qbsync.qbo.errors import RealmBudgetExhausted
from qbsync.settings import Settings, get_settings
from qbsync.store import keys

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ENTITY_LIMIT = "qbolimit"
TTL_ATTRIBUTE = keys.TTL_ATTRIBUTE
WINDOW_TTL_SECONDS = 600  # keep a closed window this long after it ends (debugging); TTL then deletes it
limit_pk = keys.qbo_limit_pk
second_sk = keys.qbo_limit_second_sk
minute_sk = keys.qbo_limit_minute_sk
batch_minute_sk = keys.qbo_limit_batch_minute_sk


@dataclass(frozen=True)
class RealmBudget:
    """Calls admitted per realm. Defaults stay under Intuit's 10/s, 500/min, 40 batch/min (see module doc)."""

    per_second: int = 9
    per_minute: int = 480
    batch_per_minute: int = 36

    def __post_init__(self) -> None:
        if min(self.per_second, self.per_minute, self.batch_per_minute) < 1:
            raise ValueError("every budget must be at least 1")


class RealmLimiter(Protocol):
    def acquire(self, realm_id: str, *, batch: bool = False) -> None:
        """Return when one call (a ``/batch`` call if ``batch``) may be sent for ``realm_id``; raise
        :class:`RealmBudgetExhausted` if that cannot happen within the limiter's bounded wait."""
        ...


class NoLimiter:
    """Admits everything (scripts, tests that are not about limits)."""

    def acquire(self, realm_id: str, *, batch: bool = False) -> None:
        return None


@dataclass
class _RealmLog:
    calls: deque[float] = field(default_factory=deque)
    batches: deque[float] = field(default_factory=deque)


class MemoryRealmLimiter:
    """Exact sliding windows per realm, thread-safe, one process only.

    A call at ``t`` occupies the windows ``(t-1, t]`` and ``(t-60, t]`` seen from later instants, so no interval
    of one second (sixty seconds) ever holds more than ``per_second`` (``per_minute``) admitted calls.
    """

    def __init__(
        self,
        budget: RealmBudget | None = None,
        *,
        max_wait: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budget = budget or RealmBudget()
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._realms: dict[str, _RealmLog] = {}

    def acquire(self, realm_id: str, *, batch: bool = False) -> None:
        deadline = self._clock() + self.max_wait
        while True:
            with self._lock:
                now = self._clock()
                log = self._realms.setdefault(realm_id, _RealmLog())
                wait = self._wait_needed(log, now, batch)
                if wait <= 0:
                    log.calls.append(now)
                    if batch:
                        log.batches.append(now)
                    return
            if now + wait > deadline:
                raise RealmBudgetExhausted(
                    f"realm {realm_id}: no {'batch ' if batch else ''}request slot within {self.max_wait:g}s",
                    retry_after=wait,
                )
            self._sleep(wait)

    def _wait_needed(self, log: _RealmLog, now: float, batch: bool) -> float:
        """Seconds until a slot frees (≤ 0: admit now). Drops entries older than a minute."""
        for entries in (log.calls, log.batches):
            while entries and entries[0] <= now - 60:
                entries.popleft()
        budget = self.budget
        wait = 0.0
        recent = sum(1 for t in log.calls if t > now - 1)
        if recent >= budget.per_second:
            # the oldest call that must leave the one-second window for a slot to free up
            wait = max(wait, log.calls[len(log.calls) - budget.per_second] + 1 - now)
        if len(log.calls) >= budget.per_minute:
            wait = max(wait, log.calls[len(log.calls) - budget.per_minute] + 60 - now)
        if batch and len(log.batches) >= budget.batch_per_minute:
            wait = max(wait, log.batches[len(log.batches) - budget.batch_per_minute] + 60 - now)
        return max(wait, 1e-3) if wait > 0 else 0.0  # a floor, so float rounding cannot spin the loop


_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoRealmLimiter:
    """Fixed 1 s and 60 s window counters in the single DynamoDB table (see the module doc for the trade-offs)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        budget: RealmBudget | None = None,
        max_wait: float = 20.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] | None = None,
        client: DynamoDBClient | None = None,
    ) -> None:
        self.budget = budget or RealmBudget()
        self.max_wait = max_wait
        self._settings = settings
        self._client = client
        self._clock = clock
        self._sleep = sleep
        # spread the waiters of a full window over 50 ms, so they do not all retry on the same millisecond
        self._jitter = jitter or (lambda: random.uniform(0.0, 0.05))  # noqa: S311 - not crypto

    @property
    def _db(self) -> DynamoDBClient:
        if self._client is not None:
            return self._client
        from qbsync import aws  # lazy: nothing AWS at import time

        db: DynamoDBClient = aws.client("dynamodb", self._settings or get_settings())
        return db

    @property
    def _table(self) -> str:
        return (self._settings or get_settings()).table_name

    def acquire(self, realm_id: str, *, batch: bool = False) -> None:
        deadline = self._clock() + self.max_wait
        while True:
            now = self._clock()
            wait = self._try_all(realm_id, now, batch)
            if wait is None:
                return
            wait += self._jitter()
            if now + wait > deadline:
                raise RealmBudgetExhausted(
                    f"realm {realm_id}: no {'batch ' if batch else ''}request slot within {self.max_wait:g}s",
                    retry_after=wait,
                )
            self._sleep(wait)

    def _try_all(self, realm_id: str, now: float, batch: bool) -> float | None:
        """Take the call's slots at ``now`` in one conditional write; ``None`` if admitted, else seconds until the
        window that is full ends."""
        second = int(now)
        minute = int(now // 60)
        minute_ends = float((minute + 1) * 60)
        second_attr = f"s{second % 60:02d}"
        names = {"#count": "count", "#second": second_attr, "#entity": "entity", "#ttl": TTL_ATTRIBUTE}
        values = {
            ":one": {"N": "1"},
            ":per_minute": {"N": str(self.budget.per_minute)},
            ":per_second": {"N": str(self.budget.per_second)},
            ":entity": {"S": ENTITY_LIMIT},
            ":ttl": {"N": str(int(minute_ends) + WINDOW_TTL_SECONDS)},
        }
        add = "#count :one, #second :one"
        condition = (
            "(attribute_not_exists(#count) OR #count < :per_minute) "
            "AND (attribute_not_exists(#second) OR #second < :per_second)"
        )
        if batch:
            names["#batch"] = "batch"
            values[":per_batch"] = {"N": str(self.budget.batch_per_minute)}
            add += ", #batch :one"
            condition += " AND (attribute_not_exists(#batch) OR #batch < :per_batch)"
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"PK": {"S": limit_pk(realm_id)}, "SK": {"S": minute_sk(minute)}},
                UpdateExpression=f"ADD {add} SET #entity = :entity, #ttl = if_not_exists(#ttl, :ttl)",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) != _CONDITION_FAILED:
                raise
            old: Any = exc.response.get("Item", {})
            minute_full = int(old.get("count", {}).get("N", "0")) >= self.budget.per_minute
            batch_full = batch and int(old.get("batch", {}).get("N", "0")) >= self.budget.batch_per_minute
            if minute_full or batch_full:
                return max(minute_ends - now, 0.0)
            return max(float(second + 1) - now, 0.0)
        return None

    def window_counts(self, realm_id: str) -> dict[str, int]:
        """``{SK: count}`` of every stored window of ``realm_id`` (diagnostics and tests; one partition query)."""
        counts: dict[str, int] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": limit_pk(realm_id)}},
            "ConsistentRead": True,
        }
        for _ in range(10_000):  # bounded paging
            page = self._db.query(**kwargs)
            for item in page.get("Items", []):
                minute = int(item["SK"]["S"].removeprefix("M#"))
                counts[minute_sk(minute)] = int(item.get("count", {}).get("N", "0"))
                if "batch" in item:
                    counts[batch_minute_sk(minute)] = int(item["batch"]["N"])
                for name, value in item.items():
                    if len(name) == 3 and name[0] == "s" and name[1:].isdigit():
                        counts[second_sk(minute * 60 + int(name[1:]))] = int(value["N"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return counts
