"""The transfer pipeline's contract: the SQS message a transfer travels in, and the dispatcher that hands each
message to the handler registered for its kind (customer, item, invoice, payment… — registered by the sync
issues). Unknown kinds and malformed messages raise, so SQS redelivers them and, after the queue's
``maxReceiveCount``, parks them in the dead-letter queue: nothing is silently dropped."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from qbsync.errors import QbsyncError
from qbsync.models import StrictModel, validate_model


class TransferMessage(StrictModel):
    """Body of a transfer-queue message. FIFO group = the QuickBooks company (realm or connector)."""

    v: Literal[1] = 1
    tenant_id: str = Field(min_length=1, max_length=64)
    transfer_id: str = Field(min_length=1, max_length=128)
    kind: str = Field(min_length=1, max_length=64)
    target: Literal["qbo", "qbd"]
    payload: dict[str, Any] = Field(default_factory=dict)


class PoisonMessage(QbsyncError):
    code, status, title = "poison_message", 422, "Message cannot be processed"


class UnknownTransferKind(QbsyncError):
    code, status, title = "unknown_transfer_kind", 422, "No handler for this transfer kind"


@dataclass
class MessageMeta:
    message_id: str
    group_id: str | None
    receive_count: int


TransferHandler = Callable[[TransferMessage, MessageMeta], dict[str, Any] | None]


@dataclass
class TransferDispatcher:
    handlers: dict[str, TransferHandler] = field(default_factory=dict)

    def register(self, kind: str, handler: TransferHandler) -> None:
        if kind in self.handlers:
            raise ValueError(f"a handler for {kind!r} is already registered")
        self.handlers[kind] = handler

    def parse(self, body: str) -> TransferMessage:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, TypeError) as exc:
            raise PoisonMessage(f"Transfer message is not JSON: {exc}") from None
        try:
            return validate_model(TransferMessage, data)
        except QbsyncError as exc:
            raise PoisonMessage(f"Transfer message is invalid: {exc.extra.get('errors')}") from None

    def dispatch(self, body: str, meta: MessageMeta) -> dict[str, Any] | None:
        message = self.parse(body)
        handler = self.handlers.get(message.kind)
        if handler is None:
            raise UnknownTransferKind(f"No transfer handler for kind {message.kind!r}.")
        return handler(message, meta)


_dispatcher: TransferDispatcher | None = None


def get_dispatcher() -> TransferDispatcher:
    """The process-wide dispatcher, with every transfer kind's handler registered (built on first use)."""
    global _dispatcher
    if _dispatcher is None:
        from qbsync.api.services import get_services
        from qbsync.qbo.connection import INITIAL_IMPORT
        from qbsync.sync.desktop_match import IMPORT_READY
        from qbsync.sync.journal import RUN_KIND
        from qbsync.sync.worker import JOB_FINISHED

        def initial_import(message: TransferMessage, meta: MessageMeta) -> dict[str, Any] | None:
            services = get_services()
            outcome = services.qbo.initial_import(message, meta)
            outcome["released"] = services.issues.release_on_connect(message.tenant_id)
            return outcome

        def reconcile(message: TransferMessage, meta: MessageMeta) -> dict[str, Any] | None:
            from qbsync.qbo.errors import QboError
            from qbsync.qbo.tokens import NeedsReauth, NotConnected

            realm = str(message.payload.get("realm_id", ""))
            entities = message.payload.get("entities") or []
            if not realm or not isinstance(entities, list):
                raise PoisonMessage("A reconcile message needs realm_id and a list of entities.")
            services = get_services()
            tenant = services.store.tenants.get(message.tenant_id)
            if tenant is None or not tenant.is_active:
                return {"skipped": "tenant inactive"}
            try:
                return services.reconciler.reconcile_entities(message.tenant_id, realm, entities).as_dict()
            except (NeedsReauth, NotConnected):
                return {"skipped": "reconnect"}  # the scheduled run catches up from its watermark afterwards
            except QboError as exc:
                if exc.retryable:
                    raise  # throttled / unavailable: SQS brings the message back
                return {"failed": exc.code}  # the scheduled run reads the same changes again

        dispatcher = TransferDispatcher()
        dispatcher.register(INITIAL_IMPORT, initial_import)
        dispatcher.register(IMPORT_READY, lambda message, meta: get_services().sync.import_ready(message, meta))
        dispatcher.register("reconcile.qbo", reconcile)  # queued by POST /qbo/webhooks
        dispatcher.register(JOB_FINISHED, lambda message, meta: get_services().sync.apply_job_outcome(message, meta))
        dispatcher.register(RUN_KIND, lambda message, meta: get_services().journal.handle(message, meta))
        from qbsync.sync.records import RECORD_MODELS

        for kind in RECORD_MODELS:
            dispatcher.register(f"sync.{kind}", lambda message, meta: get_services().sync.handle(message, meta))
        _dispatcher = dispatcher
    return _dispatcher


def use_dispatcher(dispatcher: TransferDispatcher | None) -> None:
    global _dispatcher
    _dispatcher = dispatcher
