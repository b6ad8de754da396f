"""The QuickBooks Online connection lifecycle (C4): connect, callback, status, test, disconnect, reconnect.

Connect hands out Intuit's authorization URL with a ``state`` that is random (``secrets``), stored only as a
hash, bound to the tenant, single-use and valid for ten minutes. The callback consumes it, exchanges the code,
stores the KMS-sealed tokens, reads the company name, and queues the initial list import; the connection is
``connecting`` until that import has run, then ``connected``.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from pydantic import Field

from qbsync.errors import BadRequest, ConcurrentModification, Conflict
from qbsync.events import EventPublisher
from qbsync.models import StrictModel
from qbsync.observability import get_logger
from qbsync.qbo.client import TokenSource
from qbsync.qbo.errors import AuthenticationFailed, Forbidden
from qbsync.qbo.oauth import InvalidGrant, OAuthFailed, OAuthProvider
from qbsync.qbo.tokens import NotConnected, TokenManager, iso_now
from qbsync.queue import TransferQueue
from qbsync.store.ports import QboConnection, Store, Tenant
from qbsync.transfers import MessageMeta, TransferMessage

STATE_TTL_SECONDS = 600
INITIAL_IMPORT = "qbo.initial_import"
_REALM = re.compile(r"^[0-9]{1,32}$")


class CompanyReader(Protocol):
    def __call__(self, realm_id: str, tokens: TokenSource) -> dict[str, Any]:
        """The CompanyInfo object of the realm (``CompanyName``, ``Country``…)."""


@dataclass(frozen=True)
class _FreshTokens:
    """The access token just received from the code exchange, before anything is stored (no refresh: a 401
    with a token seconds old means Intuit did not authorize this company)."""

    token: str

    def access_token(self) -> str:
        return self.token

    def refreshed_after_401(self) -> str:
        return self.token


class QboConnectionView(StrictModel):
    status: Literal["not_connected", "connecting", "connected", "needs_reauth", "disconnected"]
    realm_id: str | None = None
    company_name: str | None = None
    connected_at: str | None = None
    access_token_expires_at: int | None = None
    refresh_token_expires_at: int | None = None
    refresh_token_hard_expires_at: int | None = Field(None, description="Intuit's 5-year cap, when known.")
    last_refresh_at: str | None = None
    last_error: str | None = None
    reconnect_url: str | None = Field(None, description="Where to send the user when status is needs_reauth.")


class AuthorizationUrl(StrictModel):
    authorization_url: str
    expires_in: int = STATE_TTL_SECONDS


class ConnectionTest(StrictModel):
    ok: bool
    company_name: str | None = None
    country: str | None = None


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


class QboConnectionService:
    def __init__(
        self,
        store: Store,
        tokens: TokenManager,
        oauth: OAuthProvider,
        queue: TransferQueue,
        events: EventPublisher,
        company_reader: CompanyReader,
        *,
        epoch: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.oauth = oauth
        self.queue = queue
        self.events = events
        self.company_reader = company_reader
        self.epoch = epoch
        self.log = get_logger()

    def connect(self, tenant: Tenant, public_base_url: str) -> AuthorizationUrl:
        state = secrets.token_urlsafe(32)
        self.store.qbo.create_state(state_hash(state), tenant.tenant_id, int(self.epoch()) + STATE_TTL_SECONDS)
        client = self.oauth.client(self.oauth.redirect_uri(public_base_url))
        return AuthorizationUrl(authorization_url=client.authorization_url(state))

    def callback(self, *, code: str, state: str, realm_id: str, public_base_url: str) -> QboConnection:
        if not state or len(state) > 256:
            raise BadRequest("The sign-in link is missing its state; start again from Connect to QuickBooks.")
        tenant_id = self.store.qbo.consume_state(state_hash(state), int(self.epoch()))
        if tenant_id is None:
            raise BadRequest(
                "This sign-in link has expired or was already used; start again from Connect to QuickBooks."
            )
        if not code or len(code) > 512 or not _REALM.match(realm_id or ""):
            raise BadRequest("Intuit's answer is missing the authorization code or the company (realmId).")
        client = self.oauth.client(self.oauth.redirect_uri(public_base_url))
        try:
            tokens = client.exchange_code(code, realm_id)
        except InvalidGrant:
            raise BadRequest("Intuit refused the authorization code; start again from Connect to QuickBooks.") from None
        try:  # the realmId comes from the browser: only store tokens for the company they actually open
            company = self.company_reader(realm_id, _FreshTokens(tokens.access_token))
        except (AuthenticationFailed, Forbidden):
            raise BadRequest(
                f"Intuit did not authorize QuickBooks company {realm_id} with this sign-in; start again from Connect "
                "to QuickBooks."
            ) from None
        now = iso_now(self.epoch())
        sealed = self.tokens.seal(tenant_id, realm_id, tokens)
        fields: dict[str, Any] = {
            "realm_id": realm_id,
            "status": "connecting",
            "tokens": sealed,
            "access_expires_at": tokens.access_expires_at,
            "refresh_expires_at": tokens.refresh_expires_at,
            "hard_expires_at": tokens.hard_expires_at,
            "connected_at": now,
            "updated_at": now,
            "last_error": None,
            "lease_owner": None,
            "lease_until": 0,
            "warnings_sent": [],
        }
        existing = self.store.qbo.get(tenant_id)
        if existing is None:
            connection = self.store.qbo.create(QboConnection(tenant_id=tenant_id, company_name=None, **fields))
        else:
            if existing.realm_id != realm_id and existing.status in ("connecting", "connected"):
                raise Conflict(
                    f"This tenant is connected to QuickBooks company {existing.realm_id}; disconnect it before "
                    f"connecting company {realm_id}."
                )
            connection = self.store.qbo.save(replace(existing, tokens_version=existing.tokens_version + 1, **fields))
        self.tokens.forget(tenant_id)
        connection = self._update(tenant_id, lambda c: replace(c, company_name=str(company.get("CompanyName") or "")))
        self.queue.send(
            TransferMessage(
                tenant_id=tenant_id,
                transfer_id=f"qbo-connect-{connection.tokens_version}",
                kind=INITIAL_IMPORT,
                target="qbo",
                payload={"realm_id": realm_id},
            ),
            group_id=f"qbo:{realm_id}",
            deduplication_id=f"{tenant_id}:{realm_id}:connect:{connection.tokens_version}",
        )
        self.events.publish(
            "connection.connected", tenant_id, {"realm_id": realm_id, "company_name": connection.company_name}
        )
        return connection

    def initial_import(self, message: TransferMessage, meta: MessageMeta) -> dict[str, Any]:
        """Transfer-queue handler: read the company's lists QuickBooks needs matched, then mark it connected."""
        connection = self.store.qbo.get(message.tenant_id)
        if connection is None or connection.status not in ("connecting", "connected"):
            return {"skipped": "not connecting"}
        company = self.company_reader(connection.realm_id, self.tokens.token_source(message.tenant_id))
        self._update(
            message.tenant_id,
            lambda c: replace(
                c,
                status="connected",
                company_name=str(company.get("CompanyName") or c.company_name),
                updated_at=iso_now(self.epoch()),
            ),
        )
        return {"connected": connection.realm_id}

    def status(self, tenant: Tenant) -> QboConnectionView:
        connection = self.store.qbo.get(tenant.tenant_id)
        if connection is None:
            return QboConnectionView(status="not_connected")
        return QboConnectionView(
            status=connection.status,
            realm_id=connection.realm_id,
            company_name=connection.company_name,
            connected_at=connection.connected_at,
            access_token_expires_at=connection.access_expires_at if connection.tokens else None,
            refresh_token_expires_at=connection.refresh_expires_at if connection.tokens else None,
            refresh_token_hard_expires_at=connection.hard_expires_at,
            last_refresh_at=connection.last_refresh_at,
            last_error=connection.last_error,
            reconnect_url="/v1/qbo/connect" if connection.status in ("needs_reauth", "disconnected") else None,
        )

    def test(self, tenant: Tenant) -> ConnectionTest:
        connection = self.store.qbo.get(tenant.tenant_id)
        if connection is None or connection.status == "disconnected":
            raise NotConnected("QuickBooks Online is not connected.")
        company = self.company_reader(connection.realm_id, self.tokens.token_source(tenant.tenant_id))
        return ConnectionTest(ok=True, company_name=company.get("CompanyName"), country=company.get("Country"))

    def disconnect(self, tenant: Tenant) -> QboConnectionView:
        """Revoke the tokens at Intuit and forget them; settings, mappings and links stay."""
        connection = self.store.qbo.get(tenant.tenant_id)
        if connection is None or connection.status == "disconnected":
            return self.status(tenant)
        if connection.tokens:
            _, refresh_token = self.tokens.unseal(connection)
            try:
                self.oauth.refresh_client().revoke(refresh_token)
            except InvalidGrant:
                pass  # already revoked or expired at Intuit: nothing left to revoke
            except OAuthFailed as exc:
                self.log.warning("qbo revoke failed; tokens forgotten anyway", extra={"detail": exc.detail})
        self._update(
            tenant.tenant_id,
            lambda c: replace(
                c, status="disconnected", tokens="", lease_owner=None, lease_until=0, updated_at=iso_now(self.epoch())
            ),
        )
        self.tokens.forget(tenant.tenant_id)
        self.events.publish("connection.disconnected", tenant.tenant_id, {"realm_id": connection.realm_id})
        return self.status(tenant)

    def _update(self, tenant_id: str, change: Callable[[QboConnection], QboConnection]) -> QboConnection:

        for _ in range(8):
            current = self.store.qbo.get(tenant_id)
            if current is None:
                raise NotConnected("QuickBooks Online is not connected.")
            try:
                return self.store.qbo.save(change(current))
            except ConcurrentModification:
                continue
        raise ConcurrentModification("The QuickBooks Online connection is changing too often; try again.")


def callback_page(title: str, message: str) -> str:
    """The small page the browser lands on after Intuit's consent screen."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
        f'{html.escape(title)}</title></head><body style="font-family: sans-serif; margin: 3em">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        '<p>You can close this window, or go back to the <a href="../console/quickbooks">admin console</a>.</p>'
        "</body></html>"
    )
