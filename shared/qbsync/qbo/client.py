"""QuickBooks Online Accounting API v3 client for one company (realm).

Every call goes to ``{base_url}/v3/company/{realm}/…`` with ``Accept: application/json``, ``minorversion`` and a
timeout, after the per-realm limiter admits it. What the client does on failure:

* **429 / 3001** (also 3001 inside a 403 or an XML body): wait ``Retry-After`` if sent, else exponential backoff with
  jitter, and send the *same* request again (same ``requestid``), a bounded number of times and within a bounded
  total sleep; then raise :class:`~qbsync.qbo.errors.Throttled` with ``retry_after`` for the SQS worker.
* **5xx, connection errors, timeouts**: same, then :class:`~qbsync.qbo.errors.ServiceUnavailable`. Safe for writes
  because every write carries a deterministic ``requestid`` (:mod:`qbsync.qbo.requestids`) that Intuit dedupes: a
  write that did land before the timeout is answered with its original response, not executed twice.
* **401 / 3200**: ``tokens.refreshed_after_401()`` once, then the same request again; a second 401 raises
  :class:`~qbsync.qbo.errors.AuthenticationFailed`.
* **5010 stale SyncToken** on :meth:`QboClient.sparse_update`: re-read once, re-apply the same sparse change on the
  fresh SyncToken with a *derived* requestid (Intuit would replay the 5010 for the original id), retry once.
* Anything else: the mapped domain error (:mod:`qbsync.qbo.errors`), including a Fault inside an HTTP 200 body.

Every error is logged (``qbsync.observability.get_logger()``) with the realm, operation, ``requestid``,
``intuit_tid`` and Intuit's code/message/detail/element. Headers and tokens are never logged.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

import requests

from qbsync.qbo.errors import (
    AuthenticationFailed,
    QboError,
    ResultSetTooBig,
    ServiceUnavailable,
    StaleObject,
    Throttled,
    UnexpectedResponse,
    error_for,
    fault_from_json,
    fault_from_xml,
)
from qbsync.qbo.jsonbody import dumps
from qbsync.qbo.limiter import DynamoRealmLimiter, NoLimiter, RealmLimiter
from qbsync.qbo.requestids import (
    MAX_BATCH_ITEM_ID,
    check_request_id,
    derive,
)
from qbsync.settings import Settings

SANDBOX_BASE_URL = "https://sandbox-quickbooks.api.intuit.com"
PRODUCTION_BASE_URL = "https://quickbooks.api.intuit.com"
DEFAULT_MINOR_VERSION = 75  # 1-74 were retired on 2025-08-01; below 75 is served as 75 anyway
MAX_PAGE_SIZE = 1000  # MAXRESULTS upper bound
MAX_BATCH_ITEMS = 30
_MAX_GET_QUERY_CHARS = 1500  # longer queries are POSTed (Content-Type: application/text) to keep URLs short

_ENTITY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}$")

Json = dict[str, Any]


class TokenSource(Protocol):
    """Where the client gets bearer tokens (implemented by the OAuth/token code)."""

    def access_token(self) -> str:
        """A currently valid access token (refreshing first if it is about to expire)."""
        ...

    def refreshed_after_401(self) -> str:
        """Force a refresh because the API answered 401/3200 with the current token; return the new one."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retrying the same request. ``max_total_sleep`` caps all sleeping in one call (Lambda time)."""

    throttle_retries: int = 3
    server_retries: int = 3
    backoff_base: float = 1.0
    backoff_cap: float = 20.0
    max_total_sleep: float = 45.0


def base_url_for(settings: Settings) -> str:
    """``QBO_API_BASE_URL`` if set (emulator, proxy), else Intuit's host for ``QBO_ENVIRONMENT``."""
    if settings.qbo_api_base_url:
        return settings.qbo_api_base_url.rstrip("/")
    return PRODUCTION_BASE_URL if settings.qbo_environment in ("production", "prod") else SANDBOX_BASE_URL


# --- batch ---------------------------------------------------------------------------------------------------------

BatchOperation = Literal["create", "update", "delete", "query"]


@dataclass(frozen=True)
class BatchItem:
    """One ``BatchItemRequest``. ``bid`` is at most 10 characters (Intuit's limit when a requestid is sent)."""

    bid: str
    operation: BatchOperation
    entity: str | None = None
    body: Json | None = None
    query: str | None = None

    @classmethod
    def create(cls, bid: str, entity: str, body: Json) -> BatchItem:
        return cls(bid, "create", entity, dict(body))

    @classmethod
    def sparse_update(cls, bid: str, entity: str, entity_id: str, sync_token: str, changes: Json) -> BatchItem:
        return cls(bid, "update", entity, {**changes, "Id": entity_id, "SyncToken": sync_token, "sparse": True})

    @classmethod
    def delete(cls, bid: str, entity: str, entity_id: str, sync_token: str) -> BatchItem:
        return cls(bid, "delete", entity, {"Id": entity_id, "SyncToken": sync_token})

    @classmethod
    def select(cls, bid: str, sql: str) -> BatchItem:
        return cls(bid, "query", query=sql)

    def to_json(self) -> Json:
        if not self.bid or len(self.bid) > MAX_BATCH_ITEM_ID:
            raise ValueError(f"bId must be 1-{MAX_BATCH_ITEM_ID} characters: {self.bid!r}")
        if self.operation == "query":
            if not self.query:
                raise ValueError(f"batch item {self.bid}: a query item needs a query")
            return {"bId": self.bid, "Query": self.query}
        if self.entity is None or self.body is None:
            raise ValueError(f"batch item {self.bid}: {self.operation} needs an entity and a body")
        return {"bId": self.bid, "operation": self.operation, _entity_name(self.entity): self.body}


@dataclass
class BatchResult:
    """The outcome of one batch item: the entity (or query response) it returned, or the mapped error."""

    bid: str
    entity_name: str | None = None
    entity: Json | None = None
    query_response: Json | None = None
    error: QboError | None = None
    raw: Json = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


# --- the client ----------------------------------------------------------------------------------------------------


def _entity_name(entity: str) -> str:
    if not _ENTITY_RE.match(entity):
        raise ValueError(f"not a QuickBooks Online entity name: {entity!r}")
    return entity[0].upper() + entity[1:]


def _get_ci(mapping: Mapping[str, Any], name: str) -> Any:
    if name in mapping:
        return mapping[name]
    lower = name.lower()
    return next((v for k, v in mapping.items() if k.lower() == lower), None)


class QboClient:
    """Accounting API client for one realm. Cheap to build; holds no token itself (``tokens`` does).

    ``clock`` (wall-clock epoch seconds) reads HTTP-date ``Retry-After``s; ``sleep`` and ``rng`` (jitter in [0, 1))
    are injectable so tests do not wait.
    """

    def __init__(
        self,
        realm_id: str,
        tokens: TokenSource,
        *,
        base_url: str,
        minor_version: int = DEFAULT_MINOR_VERSION,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5, 30),
        limiter: RealmLimiter | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not realm_id or not realm_id.isascii() or not realm_id.replace("-", "").isalnum():
            raise ValueError(f"invalid realm id {realm_id!r}")
        self.realm_id = realm_id
        self.base_url = base_url.rstrip("/")
        self.minor_version = minor_version
        self._tokens = tokens
        self._session = session or requests.Session()
        self._timeout = timeout
        self._limiter: RealmLimiter = limiter or NoLimiter()
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng

    @classmethod
    def for_settings(cls, realm_id: str, tokens: TokenSource, settings: Settings, **kwargs: Any) -> QboClient:
        """The client deployed code uses: Intuit's host from the settings and, unless another is given, the
        DynamoDB limiter that keeps every Lambda together under the realm's limits."""
        if "limiter" not in kwargs:
            kwargs["limiter"] = DynamoRealmLimiter(settings)
        return cls(realm_id, tokens, base_url=base_url_for(settings), **kwargs)

    # --- entities ------------------------------------------------------------------------------------------------

    def create(self, entity: str, body: Json, *, request_id: str) -> Json:
        """``POST /{entity}``; returns the created entity (with ``Id`` and ``SyncToken``)."""
        name = _entity_name(entity)
        response = self._send("POST", name.lower(), op="create", json_body=body, request_id=request_id)
        return self._entity_of(response, name)

    def read(self, entity: str, entity_id: str) -> Json:
        name = _entity_name(entity)
        response = self._send("GET", f"{name.lower()}/{quote(str(entity_id), safe='')}", op="read")
        return self._entity_of(response, name)

    def sparse_update(self, entity: str, entity_id: str, sync_token: str, changes: Json, *, request_id: str) -> Json:
        """Sparse update (only the fields in ``changes`` change; a ``Line`` array replaces all lines).

        On 5010 (stale SyncToken) the entity is re-read once and the same ``changes`` are sent again with the fresh
        SyncToken and the requestid ``derive(request_id, "stale", fresh_sync_token)``: deterministic, so a
        redelivered message that hits the same 5010 dedupes its retry too. A second 5010 is raised.
        """
        name = _entity_name(entity)
        body = {**changes, "Id": str(entity_id), "SyncToken": str(sync_token), "sparse": True}
        try:
            response = self._send("POST", name.lower(), op="update", json_body=body, request_id=request_id)
        except StaleObject:
            fresh = self.read(name, entity_id)
            fresh_sync = str(fresh.get("SyncToken", ""))
            retry_id = derive(request_id, "stale", fresh_sync)
            self._log().info(
                "qbo stale SyncToken: re-applying the sparse change once",
                extra={"realm_id": self.realm_id, "entity": name, "entity_id": str(entity_id), "requestid": retry_id},
            )
            body = {**changes, "Id": str(entity_id), "SyncToken": fresh_sync, "sparse": True}
            response = self._send("POST", name.lower(), op="update", json_body=body, request_id=retry_id)
        return self._entity_of(response, name)

    def delete(self, entity: str, entity_id: str, sync_token: str, *, request_id: str) -> Json:
        """``POST /{entity}?operation=delete``; returns Intuit's ``{"status": "Deleted", "Id": …}``."""
        name = _entity_name(entity)
        body = {"Id": str(entity_id), "SyncToken": str(sync_token)}
        response = self._send(
            "POST", name.lower(), op="delete", json_body=body, request_id=request_id, params={"operation": "delete"}
        )
        return self._entity_of(response, name)

    def company_info(self) -> Json:
        response = self._send("GET", f"companyinfo/{quote(self.realm_id, safe='')}", op="companyinfo")
        return self._entity_of(response, "CompanyInfo")

    def preferences(self) -> Json:
        return self._entity_of(self._send("GET", "preferences", op="preferences"), "Preferences")

    # --- queries -------------------------------------------------------------------------------------------------

    def query(self, sql: str) -> Json:
        """Run one query; returns the ``QueryResponse`` object (``{}`` when nothing matched)."""
        if len(sql) <= _MAX_GET_QUERY_CHARS:
            response = self._send("GET", "query", op="query", params={"query": sql})
        else:
            response = self._send("POST", "query", op="query", text_body=sql)
        found = _get_ci(response, "QueryResponse")
        if not isinstance(found, dict):
            raise UnexpectedResponse("query response without QueryResponse")
        return found

    def iter_query(
        self,
        entity: str,
        where: str | None = None,
        *,
        page_size: int = MAX_PAGE_SIZE,
        order_by: str | None = None,
        max_pages: int = 1000,
    ) -> Iterator[Json]:
        """Every ``entity`` matching ``where``, fetched with STARTPOSITION/MAXRESULTS pages until a short page.

        ``where``/``order_by`` are query-language fragments written by qbsync code, not user input.
        """
        name = _entity_name(entity)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        base = f"SELECT * FROM {name}"  # noqa: S608 - Intuit's query language; name is validated, no user input
        if where:
            base += f" WHERE {where}"
        if order_by:
            base += f" ORDERBY {order_by}"
        start = 1
        for _ in range(max_pages):
            page = self.query(f"{base} STARTPOSITION {start} MAXRESULTS {page_size}")
            rows = _get_ci(page, name) or []
            if not isinstance(rows, list):
                raise UnexpectedResponse(f"QueryResponse.{name} is not a list")
            yield from rows
            if len(rows) < page_size:
                return
            start += page_size
        raise ResultSetTooBig(f"{name} query did not end within {max_pages} pages of {page_size}")

    def query_all(
        self,
        entity: str,
        where: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        *,
        order_by: str | None = None,
        max_pages: int = 1000,
    ) -> list[Json]:
        return list(self.iter_query(entity, where, page_size=page_size, order_by=order_by, max_pages=max_pages))

    # --- batch and CDC -------------------------------------------------------------------------------------------

    def batch(self, items: Sequence[BatchItem], *, request_id: str | None = None) -> list[BatchResult]:
        """``POST /batch`` with at most 30 items; results in the order of ``items``.

        A ``request_id`` (≤ 36 characters) is required when any item writes. Items run independently in QBO: one
        item cannot reference an entity another item of the same batch creates. Per-item faults are mapped to
        domain errors on :attr:`BatchResult.error` (and logged), not raised.
        """
        if not 1 <= len(items) <= MAX_BATCH_ITEMS:
            raise ValueError(f"a batch holds 1-{MAX_BATCH_ITEMS} items, got {len(items)}")
        payload = [item.to_json() for item in items]
        bids = [item.bid for item in items]
        if len(set(bids)) != len(bids):
            raise ValueError("bIds must be unique within a batch")
        if request_id is None and any(item.operation != "query" for item in items):
            raise ValueError("a batch that writes needs a request_id")
        response = self._send(
            "POST",
            "batch",
            op="batch",
            json_body={"BatchItemRequest": payload},
            request_id=request_id,
            batch=True,
        )
        raw_items = _get_ci(response, "BatchItemResponse")
        if not isinstance(raw_items, list):
            raise UnexpectedResponse("batch response without BatchItemResponse")
        by_bid = {str(_get_ci(raw, "bId")): raw for raw in raw_items if isinstance(raw, dict)}
        return [self._batch_result(item, by_bid.get(item.bid), request_id) for item in items]

    def _batch_result(self, item: BatchItem, raw: Json | None, request_id: str | None) -> BatchResult:
        if raw is None:
            error: QboError = UnexpectedResponse(f"no BatchItemResponse for bId {item.bid}")
            self._log_error(error, op="batch", path="batch", request_id=request_id, attempt=1, will_retry=False)
            return BatchResult(item.bid, error=error)
        parsed = fault_from_json(raw)
        if parsed is not None:
            error = error_for(parsed, http_status=200)
            self._log_error(
                error, op="batch", path="batch", request_id=request_id, attempt=1, will_retry=False, bid=item.bid
            )
            return BatchResult(item.bid, error=error, raw=raw)
        query_response = _get_ci(raw, "QueryResponse")
        if isinstance(query_response, dict):
            return BatchResult(item.bid, query_response=query_response, raw=raw)
        for key, value in raw.items():
            if key != "bId" and isinstance(value, dict):
                return BatchResult(item.bid, entity_name=key, entity=value, raw=raw)
        return BatchResult(item.bid, error=UnexpectedResponse(f"empty BatchItemResponse for bId {item.bid}"), raw=raw)

    def cdc(self, entities: Sequence[str], changed_since: datetime | str) -> dict[str, list[Json]]:
        """Change data capture: ``{entity: [objects changed since …]}`` (deleted ones have ``status: Deleted``).

        Intuit looks back at most 30 days and returns at most 1,000 objects per call: keep windows short.
        """
        names = [_entity_name(e) for e in entities]
        if not names:
            raise ValueError("cdc needs at least one entity")
        if isinstance(changed_since, datetime):
            if changed_since.tzinfo is None:
                raise ValueError("changed_since must be timezone-aware")
            since = changed_since.isoformat(timespec="seconds")
        else:
            since = changed_since
        response = self._send("GET", "cdc", op="cdc", params={"entities": ",".join(names), "changedSince": since})
        result: dict[str, list[Json]] = {name: [] for name in names}
        responses = _get_ci(response, "CDCResponse")
        for cdc_response in responses if isinstance(responses, list) else []:
            query_responses = _get_ci(cdc_response, "QueryResponse") if isinstance(cdc_response, dict) else None
            for query_response in query_responses if isinstance(query_responses, list) else []:
                if not isinstance(query_response, dict):
                    continue
                for key, value in query_response.items():
                    if isinstance(value, list):
                        result.setdefault(key, []).extend(v for v in value if isinstance(v, dict))
        return result

    # --- transport -----------------------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        op: str,
        params: dict[str, str] | None = None,
        json_body: Json | None = None,
        text_body: str | None = None,
        request_id: str | None = None,
        batch: bool = False,
    ) -> Json:
        """Send one logical request, retrying it unchanged (same URL, same requestid) as the module doc says."""
        if request_id is not None:
            check_request_id(request_id, batch=batch)
        url = f"{self.base_url}/v3/company/{quote(self.realm_id, safe='')}/{path}"
        query: dict[str, str] = {**(params or {}), "minorversion": str(self.minor_version)}
        if request_id is not None:
            query["requestid"] = request_id
        data: bytes | None = None
        content_type: str | None = None
        if json_body is not None:
            data, content_type = dumps(json_body).encode("utf-8"), "application/json"
        elif text_body is not None:
            data, content_type = text_body.encode("utf-8"), "application/text"

        token = self._tokens.access_token()
        refreshed = False
        throttled = server_errors = 0
        slept = 0.0
        for attempt in range(1, 2 + self._retry.throttle_retries + self._retry.server_retries + 1):
            try:
                self._limiter.acquire(self.realm_id, batch=batch)
            except QboError as exc:  # our own budget is spent: QBO was not called
                self._log_error(exc, op=op, path=path, request_id=request_id, attempt=attempt, will_retry=False)
                raise
            headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
            if content_type:
                headers["Content-Type"] = content_type
            retry_after: float | None = None
            try:
                response = self._session.request(
                    method, url, params=query, data=data, headers=headers, timeout=self._timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                error: QboError = ServiceUnavailable(f"{type(exc).__name__} calling QuickBooks Online")
            else:
                body, error_or_none = self._outcome(response)
                if error_or_none is None:
                    return body
                error = error_or_none
                retry_after = _retry_after(response.headers.get("Retry-After"), self._clock)

            delay: float | None = None
            if isinstance(error, AuthenticationFailed) and not refreshed:
                refreshed = True
                self._log_error(error, op=op, path=path, request_id=request_id, attempt=attempt, will_retry=True)
                token = self._tokens.refreshed_after_401()
                continue
            if isinstance(error, Throttled) and throttled < self._retry.throttle_retries:
                delay = retry_after if retry_after is not None else self._backoff(throttled)
                throttled += 1
            elif isinstance(error, ServiceUnavailable) and server_errors < self._retry.server_retries:
                delay = self._backoff(server_errors)
                server_errors += 1
            if delay is not None and slept + delay <= self._retry.max_total_sleep:
                self._log_error(
                    error, op=op, path=path, request_id=request_id, attempt=attempt, will_retry=True, delay=delay
                )
                self._sleep(delay)
                slept += delay
                continue
            self._log_error(error, op=op, path=path, request_id=request_id, attempt=attempt, will_retry=False)
            raise error
        raise ServiceUnavailable("retry budget exhausted")  # unreachable: every path above returns or raises

    def _outcome(self, response: requests.Response) -> tuple[Json, QboError | None]:
        """The JSON body of a success, or the error a response means (a Fault wins even with HTTP 200)."""
        status = response.status_code
        tid = response.headers.get("intuit_tid")
        content = response.content or b""
        body: Any = None
        parsed = None
        stripped = content.lstrip()
        if stripped.startswith(b"<"):
            parsed = fault_from_xml(content)
        elif stripped:
            try:
                body = json.loads(content)
            except ValueError:
                body = None
            parsed = fault_from_json(body)
        if parsed is not None or not 200 <= status < 300:
            retry_after = _retry_after(response.headers.get("Retry-After"), self._clock)
            detail = None if parsed and parsed.errors else f"HTTP {status} from QuickBooks Online"
            return {}, error_for(parsed, http_status=status, intuit_tid=tid, retry_after=retry_after, detail=detail)
        if not isinstance(body, dict):
            return {}, UnexpectedResponse(
                f"HTTP {status} without a JSON object body", http_status=status, intuit_tid=tid
            )
        return body, None

    def _backoff(self, retries_so_far: int) -> float:
        """Exponential backoff with "equal jitter": half the step fixed, half random."""
        step = min(self._retry.backoff_cap, self._retry.backoff_base * float(2**retries_so_far))
        return step / 2 + self._rng() * step / 2

    @staticmethod
    def _entity_of(response: Json, name: str) -> Json:
        found = _get_ci(response, name)
        if not isinstance(found, dict):
            raise UnexpectedResponse(f"response has no {name} object")
        return found

    @staticmethod
    def _log() -> Any:
        from qbsync.observability import get_logger

        return get_logger()

    def _log_error(
        self,
        error: QboError,
        *,
        op: str,
        path: str,
        request_id: str | None,
        attempt: int,
        will_retry: bool,
        delay: float | None = None,
        bid: str | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "realm_id": self.realm_id,
            "qbo_operation": op,
            "qbo_path": path,
            "requestid": request_id,
            "attempt": attempt,
            "will_retry": will_retry,
            **error.log_fields(),
        }
        if delay is not None:
            fields["retry_in_seconds"] = round(delay, 3)
        if bid is not None:
            fields["bid"] = bid
        log = self._log()
        if will_retry:
            log.warning("qbo call failed; retrying", extra=fields)
        else:
            log.error("qbo call failed", extra=fields)


def _retry_after(value: str | None, now: Callable[[], float]) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), or ``None`` if absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())
