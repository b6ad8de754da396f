"""OAuth 2.0 grants as Intuit's endpoints hand them out: authorization codes, rotating refresh tokens, opaque
access tokens, revocation.

Deliberate difference from Intuit: **every** refresh rotates the refresh token and the previous one answers
``invalid_grant`` at once (``refresh_grace_seconds``, default 0, allows a grace window). Intuit keeps the same value
for ~24 h; rotating on every call exercises the client's single-flight/persist-atomically logic. Access tokens issued
before a refresh stay valid until they expire (as at Intuit). Revoking any token of a connection (refresh or access)
kills the whole connection: all its refresh and access tokens.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

CODE_TTL = 600
HARD_TTL = 5 * 365 * 86400


@dataclass
class Connection:
    """One consent (realm + client): the family all rotated tokens belong to."""

    realm_id: str
    created_at: float
    hard_expires_at: float
    revoked: bool = False
    refresh_tokens: list[str] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)


@dataclass
class RefreshGrant:
    connection: Connection
    expires_at: float
    superseded_at: float | None = None  # set when rotated away


@dataclass
class AccessGrant:
    connection: Connection
    expires_at: float


@dataclass
class CodeGrant:
    realm_id: str
    client_id: str
    redirect_uri: str
    expires_at: float
    used: bool = False


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.body: dict[str, Any] = {"error": error}
        if description is not None:
            self.body["error_description"] = description


class TokenStore:
    """Holds every grant; callers serialise access with the emulator lock."""

    def __init__(self, clock: Callable[[], float], access_ttl: int, refresh_ttl: int) -> None:
        self.clock = clock
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.hard_ttl = HARD_TTL
        self.refresh_grace_seconds = 0.0
        self.codes: dict[str, CodeGrant] = {}
        self.refresh: dict[str, RefreshGrant] = {}
        self.access: dict[str, AccessGrant] = {}

    def issue_code(self, realm_id: str, client_id: str, redirect_uri: str) -> str:
        code = "AB11" + secrets.token_urlsafe(36)
        self.codes[code] = CodeGrant(realm_id, client_id, redirect_uri, self.clock() + CODE_TTL)
        return code

    def exchange_code(self, code: str, client_id: str, redirect_uri: str | None) -> tuple[dict[str, Any], Connection]:
        grant = self.codes.get(code)
        if grant is None or grant.used or grant.expires_at <= self.clock() or grant.client_id != client_id:
            raise OAuthError(400, "invalid_grant", "Token invalid")
        if redirect_uri != grant.redirect_uri:
            raise OAuthError(400, "invalid_grant", "Redirect URI mismatch")
        grant.used = True
        now = self.clock()
        connection = Connection(grant.realm_id, now, now + self.hard_ttl)
        return self._issue(connection), connection

    def new_connection(self, realm_id: str) -> dict[str, Any]:
        now = self.clock()
        return self._issue(Connection(realm_id, now, now + self.hard_ttl))

    def rotate(self, refresh_token: str) -> tuple[dict[str, Any], Connection]:
        now = self.clock()
        grant = self.refresh.get(refresh_token)
        if grant is None or grant.connection.revoked:
            raise OAuthError(400, "invalid_grant", "Incorrect or invalid refresh token")
        if grant.expires_at <= now or grant.connection.hard_expires_at <= now:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        grace = self.refresh_grace_seconds
        if grant.superseded_at is not None and (grace <= 0 or now - grant.superseded_at > grace):
            raise OAuthError(400, "invalid_grant", "Incorrect or invalid refresh token")
        for token in grant.connection.refresh_tokens:
            other = self.refresh[token]
            if other.superseded_at is None:
                other.superseded_at = now
        return self._issue(grant.connection), grant.connection

    def _issue(self, connection: Connection) -> dict[str, Any]:
        now = self.clock()
        access = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + secrets.token_urlsafe(48)
        refresh = "RT1-" + secrets.token_hex(4) + "-H0-" + secrets.token_urlsafe(24)
        refresh_expiry = min(now + self.refresh_ttl, connection.hard_expires_at)
        self.access[access] = AccessGrant(connection, now + self.access_ttl)
        self.refresh[refresh] = RefreshGrant(connection, refresh_expiry)
        connection.access_tokens.append(access)
        connection.refresh_tokens.append(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": self.access_ttl,
            "x_refresh_token_expires_in": int(refresh_expiry - now),
            "_hard": int(connection.hard_expires_at - now),
        }

    def revoke(self, token: str) -> bool:
        grant = self.refresh.get(token) or self.access.get(token)
        if grant is None:
            return False
        grant.connection.revoked = True
        return True

    def check_access(self, token: str) -> tuple[str | None, str]:
        """(realm id, "") for a live token, else (None, reason)."""
        grant = self.access.get(token)
        if grant is None:
            return None, "Token invalid: unknown access token"
        if grant.connection.revoked:
            return None, "Token revoked"
        if grant.expires_at <= self.clock():
            return None, "Token expired"
        return grant.connection.realm_id, ""
