"""QuickBooks Online token care (C5): encrypted at rest, refreshed near expiry, one refresh per realm at a time.

* Tokens are stored only as KMS ciphertext, under an encryption context naming the tenant and realm: a blob copied
  to another tenant's item does not decrypt.
* Refresh is single-flight per realm. The caller that finds the access token near expiry takes a short **lease** on
  the connection (an optimistic, version-checked write); it alone calls Intuit, then stores the rotated refresh
  token together with the new access token in one write. Everyone else waits and re-reads. Two refreshes with the
  same refresh token would leave the loser holding a dead one — the main cause of ``invalid_grant`` in the field.
* ``invalid_grant`` moves the connection to ``needs_reauth`` (which pauses its work) and emits
  ``connection.needs_reauth`` with the reconnect URL.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from qbsync import aws
from qbsync.clock import iso
from qbsync.errors import ConcurrentModification, NotConfigured, NotFound, QbsyncError
from qbsync.events import EventPublisher
from qbsync.observability import get_logger
from qbsync.qbo.oauth import InvalidGrant, OAuthProvider, TokenSet
from qbsync.settings import Settings
from qbsync.store.ports import QboConnection, Store

REFRESH_SKEW_SECONDS = 300  # refresh when the access token has less than this left
ACCESS_TOKEN_CACHE_SECONDS = 60.0  # how long one process reuses a decrypted access token


class NeedsReauth(QbsyncError):
    code, status, title = "qbo_needs_reauth", 409, "QuickBooks Online needs to be reconnected"


class NotConnected(QbsyncError):
    code, status, title = "qbo_not_connected", 409, "QuickBooks Online is not connected"


class RefreshInProgress(QbsyncError):
    """Another caller holds the refresh lease and did not finish in time: retry the work later."""

    code, status, title = "qbo_refresh_in_progress", 503, "QuickBooks Online token refresh in progress"


class TokenCipher(Protocol):
    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> str: ...

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> bytes: ...


class KmsTokenCipher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> str:
        if not self.settings.kms_key_id:
            raise NotConfigured("No KMS key is configured for token encryption (QBSYNC_KMS_KEY_ID).")
        blob = aws.client("kms", self.settings).encrypt(
            KeyId=self.settings.kms_key_id, Plaintext=plaintext, EncryptionContext=context
        )["CiphertextBlob"]
        return base64.b64encode(blob).decode("ascii")

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> bytes:
        response = aws.client("kms", self.settings).decrypt(
            CiphertextBlob=base64.b64decode(ciphertext), EncryptionContext=context
        )
        return bytes(response["Plaintext"])


class InsecureTestCipher:
    """For unit tests only: an XOR with a pad derived from the context (reversible, context-bound, not secure)."""

    @staticmethod
    def _mix(data: bytes, context: dict[str, str]) -> bytes:
        pad = hashlib.sha256(json.dumps(context, sort_keys=True).encode()).digest()
        return bytes(b ^ pad[i % len(pad)] for i, b in enumerate(data))

    def encrypt(self, plaintext: bytes, context: dict[str, str]) -> str:
        return "test:" + base64.b64encode(self._mix(plaintext, context)).decode()

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> bytes:
        return self._mix(base64.b64decode(ciphertext.removeprefix("test:")), context)


def token_context(tenant_id: str, realm_id: str) -> dict[str, str]:
    return {"purpose": "qbo-tokens", "tenant_id": tenant_id, "realm_id": realm_id}


@dataclass
class TenantTokens:
    """A ``TokenSource`` for one tenant's QBO client (access token, and a forced refresh after a 401)."""

    manager: TokenManager
    tenant_id: str
    seen_version: int = 0

    def access_token(self) -> str:
        token, self.seen_version = self.manager.access_token_with_version(self.tenant_id)
        return token

    def refreshed_after_401(self) -> str:
        token, self.seen_version = self.manager.force_refresh(self.tenant_id, self.seen_version)
        return token


class TokenManager:
    def __init__(
        self,
        store: Store,
        cipher: TokenCipher,
        oauth: OAuthProvider,
        events: EventPublisher,
        *,
        epoch: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        lease_seconds: int = 30,
        wait_seconds: float = 25.0,
        cache_seconds: float = ACCESS_TOKEN_CACHE_SECONDS,
    ) -> None:
        self.store = store
        self.cipher = cipher
        self.oauth = oauth
        self.events = events
        self.epoch = epoch
        self.sleep = sleep
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[str, int, float]] = {}
        self.log = get_logger()

    # --- storing --------------------------------------------------------------------------------------------

    def seal(self, tenant_id: str, realm_id: str, tokens: TokenSet) -> str:
        plaintext = json.dumps({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token})
        return self.cipher.encrypt(plaintext.encode("utf-8"), token_context(tenant_id, realm_id))

    def unseal(self, connection: QboConnection) -> tuple[str, str]:
        if not connection.tokens:
            raise NotConnected("QuickBooks Online is not connected.")
        data = json.loads(
            self.cipher.decrypt(connection.tokens, token_context(connection.tenant_id, connection.realm_id))
        )
        return str(data["access_token"]), str(data["refresh_token"])

    # --- reading --------------------------------------------------------------------------------------------

    def token_source(self, tenant_id: str) -> TenantTokens:
        return TenantTokens(self, tenant_id)

    def access_token(self, tenant_id: str) -> str:
        return self.access_token_with_version(tenant_id)[0]

    def access_token_with_version(self, tenant_id: str) -> tuple[str, int]:
        """The tenant's access token, decrypted at most once a minute per process: every QBO call would otherwise
        cost a DynamoDB read and a KMS decrypt. A disconnect or a refresh elsewhere is safe: the old token is refused
        (401) or still valid, and a 401 goes through :meth:`force_refresh`, which reads the store again."""
        now = self.epoch()
        cached = self._cache.get(tenant_id)
        if cached is not None and cached[2] > now:
            return cached[0], cached[1]
        connection = self._usable(tenant_id)
        valid_until = now + self.cache_seconds
        if connection.access_expires_at - REFRESH_SKEW_SECONDS > now:
            token, version = self.unseal(connection)[0], connection.tokens_version
            valid_until = min(valid_until, connection.access_expires_at - REFRESH_SKEW_SECONDS)
        else:  # a refreshed token is good for an hour
            token, version = self._refresh(
                tenant_id, lambda c: c.access_expires_at - REFRESH_SKEW_SECONDS <= self.epoch()
            )
        self._cache[tenant_id] = (token, version, valid_until)
        return token, version

    def forget(self, tenant_id: str) -> None:
        """Drop the cached access token (after a disconnect, a refusal, or a refresh elsewhere)."""
        self._cache.pop(tenant_id, None)

    def force_refresh(self, tenant_id: str, seen_version: int) -> tuple[str, int]:
        """After a 401: refresh unless someone already did since the caller read its token."""
        self.forget(tenant_id)
        return self._refresh(tenant_id, lambda c: c.tokens_version <= seen_version)

    def refresh_if_due(self, tenant_id: str, *, refresh_before: float) -> bool:
        """For the scheduled refresher: refresh when the refresh token's rolling expiry is before ``refresh_before``
        or the access token is near expiry. True if a refresh happened."""
        connection = self._usable(tenant_id)
        due = connection.refresh_expires_at < refresh_before
        if not due:
            return False
        self._refresh(tenant_id, lambda c: c.refresh_expires_at < refresh_before)
        return True

    # --- the single flight ----------------------------------------------------------------------------------

    def _usable(self, tenant_id: str) -> QboConnection:
        connection = self.store.qbo.get(tenant_id)
        if connection is None or connection.status == "disconnected":
            raise NotConnected("QuickBooks Online is not connected.")
        if connection.status == "needs_reauth":
            raise NeedsReauth("QuickBooks Online needs to be reconnected (GET /v1/qbo/connect).")
        return connection

    def _refresh(self, tenant_id: str, still_needed: Callable[[QboConnection], bool]) -> tuple[str, int]:
        owner = secrets.token_hex(8)
        deadline = self.epoch() + self.wait_seconds
        delay = 0.05
        while True:
            connection = self._usable(tenant_id)
            if not still_needed(connection):
                return self.unseal(connection)[0], connection.tokens_version  # someone else refreshed
            now = int(self.epoch())
            if connection.lease_until <= now:
                try:
                    leased = self.store.qbo.save(
                        replace(connection, lease_owner=owner, lease_until=now + self.lease_seconds)
                    )
                except ConcurrentModification:
                    leased = None  # another caller took it first: wait for its result
                if leased is not None:
                    return self._refresh_holding_lease(leased, owner)
            if self.epoch() >= deadline:
                raise RefreshInProgress("Another refresh of this QuickBooks Online connection did not finish in time.")
            self.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _refresh_holding_lease(self, connection: QboConnection, owner: str) -> tuple[str, int]:
        _, refresh_token = self.unseal(connection)
        try:
            tokens = self.oauth.refresh_client().refresh(refresh_token)
        except InvalidGrant as exc:
            self._needs_reauth(connection, owner, exc.detail)
            raise NeedsReauth("QuickBooks Online refused the refresh token; reconnect (GET /v1/qbo/connect).") from None
        except Exception:
            self._release(connection, owner)
            raise
        sealed = self.seal(connection.tenant_id, connection.realm_id, tokens)
        for _ in range(5):
            updated = replace(
                connection,
                tokens=sealed,
                access_expires_at=tokens.access_expires_at,
                refresh_expires_at=tokens.refresh_expires_at,
                hard_expires_at=tokens.hard_expires_at or connection.hard_expires_at,
                tokens_version=connection.tokens_version + 1,
                last_refresh_at=iso_now(self.epoch()),
                updated_at=iso_now(self.epoch()),
                lease_owner=None,
                lease_until=0,
            )
            try:
                saved = self.store.qbo.save(updated)
                return tokens.access_token, saved.tokens_version
            except ConcurrentModification:
                # The rotated refresh token must not be lost: re-read and store it over whatever changed.
                fresh = self.store.qbo.get(connection.tenant_id)
                if fresh is None or fresh.status == "disconnected":
                    raise NotConnected("QuickBooks Online was disconnected during a token refresh.") from None
                connection = replace(fresh, tokens_version=max(fresh.tokens_version, connection.tokens_version))
        raise ConcurrentModification("The refreshed QuickBooks Online tokens could not be stored.")

    def _release(self, connection: QboConnection, owner: str) -> None:
        current = self.store.qbo.get(connection.tenant_id)
        if current is not None and current.lease_owner == owner:
            with contextlib.suppress(ConcurrentModification):  # else the lease simply expires
                self.store.qbo.save(replace(current, lease_owner=None, lease_until=0))

    def _needs_reauth(self, connection: QboConnection, owner: str, reason: str) -> None:
        self.forget(connection.tenant_id)
        for _ in range(5):
            current = self.store.qbo.get(connection.tenant_id)
            if current is None:
                return
            try:
                self.store.qbo.save(
                    replace(
                        current,
                        status="needs_reauth",
                        last_error=reason,
                        lease_owner=None,
                        lease_until=0,
                        updated_at=iso_now(self.epoch()),
                    )
                )
                break
            except ConcurrentModification:
                continue
        self.log.warning("qbo connection needs reauthorization", extra={"tenant_id": connection.tenant_id})
        self.events.publish(
            "connection.needs_reauth",
            connection.tenant_id,
            {"realm_id": connection.realm_id, "reason": reason, "reconnect": "GET /v1/qbo/connect"},
        )


def iso_now(epoch_seconds: float) -> str:
    return iso(datetime.fromtimestamp(epoch_seconds, UTC))


def require_connection(store: Store, tenant_id: str) -> QboConnection:
    found = store.qbo.get(tenant_id)
    if found is None:
        raise NotFound("This tenant has no QuickBooks Online connection.")
    return found
