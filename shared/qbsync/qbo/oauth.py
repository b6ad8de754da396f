"""OAuth 2.0 with Intuit through intuit-oauth (C4, C5).

intuit-oauth's ``AuthClient`` fetches the discovery document in its constructor and sets no timeout on any call.
We keep it (it knows Intuit's endpoints, scopes and the hard-expiry header) but (1) give every call a timeout by
overriding ``request`` — the constructor's discovery GET included — and (2) build one client per container, lazily,
so a cold start pays for the discovery document once (one HTTPS GET, typically 100-300 ms) and warm calls never do.
The client object is mutable (it stores tokens on itself), so calls on it are serialised with a lock and the
tokens are copied out at once.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from qbsync import aws
from qbsync.errors import NotConfigured, QbsyncError
from qbsync.settings import Settings

TIMEOUT = (5.0, 20.0)  # connect, read (seconds)
_SECRET_CACHE_SECONDS = 300


class OAuthFailed(QbsyncError):
    code, status, title = "qbo_oauth_failed", 502, "QuickBooks Online sign-in failed"


class InvalidGrant(OAuthFailed):
    """Intuit refused the code or refresh token: only the user reconnecting can fix it."""

    code, status, title = "invalid_grant", 409, "QuickBooks Online needs to be reconnected"


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    access_expires_at: int  # epoch seconds
    refresh_expires_at: int
    hard_expires_at: int | None  # the 5-year cap, when Intuit tells it


class _TimedAuthClient(AuthClient):  # type: ignore[misc]
    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, url, *args, **kwargs)


class IntuitOAuth:
    def __init__(self, client_id: str, client_secret: str, redirect_uri: str, environment: str) -> None:
        self._lock = threading.Lock()
        try:
            self._client = _TimedAuthClient(client_id, client_secret, redirect_uri, environment)
        except AuthClientError as exc:
            raise OAuthFailed(f"Intuit's discovery document could not be read (HTTP {exc.status_code}).") from None
        self._client.include_refresh_token_hard_expires_in = True
        self.redirect_uri = redirect_uri

    def authorization_url(self, state: str) -> str:
        with self._lock:
            return str(self._client.get_authorization_url([Scopes.ACCOUNTING], state_token=state))

    def exchange_code(self, code: str, realm_id: str) -> TokenSet:
        with self._lock:
            self._call(self._client.get_bearer_token, code, realm_id=realm_id)
            return self._tokens()

    def refresh(self, refresh_token: str) -> TokenSet:
        with self._lock:
            self._call(self._client.refresh, refresh_token=refresh_token)
            return self._tokens()

    def revoke(self, token: str) -> None:
        with self._lock:
            self._call(self._client.revoke, token=token)

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except AuthClientError as exc:
            raise _map_error(exc) from None

    def _tokens(self) -> TokenSet:
        now = int(time.time())
        client = self._client
        hard = getattr(client, "x_refresh_token_hard_expires_in", None)
        return TokenSet(
            access_token=str(client.access_token),
            refresh_token=str(client.refresh_token),
            access_expires_at=now + int(client.expires_in or 3600),
            refresh_expires_at=now + int(client.x_refresh_token_expires_in or 100 * 86400),
            hard_expires_at=now + int(hard) if hard else None,
        )


def _map_error(exc: AuthClientError) -> OAuthFailed:
    try:
        body = json.loads(exc.content or b"{}")
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    tid = getattr(exc, "intuit_tid", None)
    if error == "invalid_grant":
        return InvalidGrant(f"Intuit refused the grant: {body.get('error_description', 'invalid_grant')} (tid {tid}).")
    return OAuthFailed(f"Intuit's token endpoint answered HTTP {exc.status_code} {error or ''} (tid {tid}).".strip())


class OAuthProvider:
    """Builds (once per redirect URI) the ``IntuitOAuth`` for this container's settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, IntuitOAuth] = {}
        self._secret: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def redirect_uri(self, public_base_url: str) -> str:
        return self.settings.qbo_redirect_uri or f"{public_base_url.rstrip('/')}/qbo/callback"

    def client(self, redirect_uri: str) -> IntuitOAuth:
        with self._lock:
            found = self._clients.get(redirect_uri)
            if found is None:
                if not self.settings.qbo_client_id:
                    raise NotConfigured("QuickBooks Online is not configured (QBO_CLIENT_ID).")
                found = IntuitOAuth(
                    self.settings.qbo_client_id, self._client_secret(), redirect_uri, self.settings.qbo_environment
                )
                self._clients[redirect_uri] = found
            return found

    def refresh_client(self) -> IntuitOAuth:
        """Any client will do for refresh and revoke (the redirect URI only matters for the code exchange)."""
        with self._lock:
            existing = next(iter(self._clients.values()), None)
        return existing or self.client(self.settings.qbo_redirect_uri or "https://localhost/qbo/callback")

    def _client_secret(self) -> str:
        if self.settings.qbo_client_secret:
            return self.settings.qbo_client_secret
        if not self.settings.qbo_client_secret_arn:
            raise NotConfigured("QuickBooks Online is not configured (QBO_CLIENT_SECRET or QBO_CLIENT_SECRET_ARN).")
        if self._secret is None or self._secret[0] < time.monotonic():
            value = aws.client("secretsmanager", self.settings).get_secret_value(
                SecretId=self.settings.qbo_client_secret_arn
            )["SecretString"]
            self._secret = (time.monotonic() + _SECRET_CACHE_SECONDS, str(value).strip())
        return self._secret[1]
