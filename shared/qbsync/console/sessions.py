"""Console sign-in: a tenant's API key is exchanged for a short-lived, server-side session.

Why server-side (a DynamoDB item with TTL) rather than a signed cookie: signing out, revoking the API key or
deactivating the tenant ends the session at once, and there is no signing key to create, store and rotate. The
cookie carries 256 random bits; only their SHA-256 is stored, so the table never holds a usable session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import Unauthorized
from qbsync.security import constant_time_equals
from qbsync.store.ports import ConsoleSession, Store, Tenant
from qbsync.tenancy import TenantService, parse_api_key


@dataclass(frozen=True)
class SignedIn:
    session: ConsoleSession
    tenant: Tenant


class ConsoleSessions:
    def __init__(self, store: Store, tenants: TenantService, *, minutes: int, clock: Clock | None = None) -> None:
        self.store = store
        self.tenants = tenants
        self.minutes = minutes
        self.clock = clock or SystemClock()

    def sign_in(self, api_key: str) -> tuple[str, SignedIn]:
        """The new session's cookie token and the session. ``Unauthorized``/``TenantInactive`` as for the API."""
        tenant = self.tenants.authenticate(api_key)
        parsed = parse_api_key(api_key)
        assert parsed is not None  # authenticate accepted it
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        session = ConsoleSession(
            session_hash=_hash(token),
            tenant_id=tenant.tenant_id,
            key_id=parsed[0],
            csrf_token=secrets.token_urlsafe(32),
            created_at=iso(now),
            expires_at=int((now + timedelta(minutes=self.minutes)).timestamp()),
        )
        self.store.console_sessions.create(session)
        return token, SignedIn(session, tenant)

    def resolve(self, token: str) -> SignedIn:
        """The live session behind a cookie token, with its tenant; ``Unauthorized`` when there is none."""
        if not token or len(token) > 128:
            raise Unauthorized("Sign in to the console.")
        session = self.store.console_sessions.get(_hash(token), int(self.clock.now().timestamp()))
        if session is None:
            raise Unauthorized("Your console session has ended; sign in again.")
        key = self.store.tenants.get_api_key(session.key_id)
        tenant = self.store.tenants.get(session.tenant_id)
        if key is None or key.revoked or key.tenant_id != session.tenant_id or tenant is None or not tenant.is_active:
            self.store.console_sessions.delete(session.session_hash)
            raise Unauthorized("The API key or tenant of this session is no longer valid; sign in again.")
        return SignedIn(session, tenant)

    def sign_out(self, token: str) -> None:
        if token and len(token) <= 128:
            self.store.console_sessions.delete(_hash(token))

    @staticmethod
    def check_csrf(session: ConsoleSession, submitted: str) -> bool:
        return bool(submitted) and constant_time_equals(session.csrf_token, submitted)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
