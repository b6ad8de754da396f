"""The one settings object. Logic never reads ``os.environ``; it receives a :class:`Settings`.

Environment names are part of the public contract (DESIGN.md "Settings"): they may grow, never change meaning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from urllib.parse import urlsplit

LOCAL_STAGE = "local"
LOCAL_ADMIN_KEY = "local-admin-key"  # only ever used when the stage is "local"


class SettingsError(ValueError):
    """An environment variable is missing or malformed."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def parse_origins(raw: str, name: str = "QBSYNC_CONSOLE_ORIGINS") -> tuple[str, ...]:
    """``"https://app.example.com, http://localhost:5173"`` → normalized origins (scheme://host[:port]).

    Browsers send ``Origin`` without a path, so anything with a path, query or credentials is a mistake; plain
    http is only accepted for loopback hosts (a console under development)."""
    origins: list[str] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("https", "http") or not host:
            raise SettingsError(f"{name}: {item!r} is not an origin like https://app.example.com")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
            raise SettingsError(f"{name}: {item!r} must be scheme://host[:port] with no path")
        if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
            raise SettingsError(f"{name}: {item!r} must use https (plain http only for localhost)")
        port = f":{parts.port}" if parts.port else ""
        origin = f"{parts.scheme}://{host}{port}"
        if origin not in origins:
            origins.append(origin)
    return tuple(origins)


def _opt(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Settings:
    stage: str = LOCAL_STAGE
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    table_name: str = "qbsync"
    transfer_queue_url: str | None = None
    transfer_dlq_url: str | None = None
    event_bus: str | None = None
    kms_key_id: str | None = None
    admin_key: str | None = field(default=None, repr=False)
    admin_key_secret_arn: str | None = None
    qbo_client_id: str | None = None
    qbo_client_secret: str | None = field(default=None, repr=False)
    qbo_client_secret_arn: str | None = None
    qbo_redirect_uri: str | None = None
    qbo_environment: str = "sandbox"
    qbo_api_base_url: str | None = None
    qbo_webhook_verifier_token: str | None = field(default=None, repr=False)
    qbo_webhook_verifier_token_arn: str | None = None
    public_base_url: str | None = None
    console_origins: tuple[str, ...] = ()
    """Browser origins of an admin console allowed to call the API (deployed: the ConsoleOrigins parameter)."""
    max_body_bytes: int = 2 * 1024 * 1024
    max_soap_bytes: int = 6_000_000  # Lambda's synchronous payload limit
    # qbXML requests packed into one sendRequestXML (None: the Web Connector service's own default, 100). Lower it
    # for a slow QuickBooks machine; 1 reproduces the one-request-per-round-trip baseline of `make bench`.
    wc_max_requests: int | None = None
    api_key_cache_seconds: int = 60
    console_session_minutes: int = 60  # admin console sign-in lifetime (absolute, not sliding)
    log_level: str = "INFO"

    @property
    def is_local(self) -> bool:
        return self.stage == LOCAL_STAGE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        stage = (env.get("QBSYNC_STAGE") or LOCAL_STAGE).strip()
        admin_key = _opt(env, "QBSYNC_ADMIN_KEY")
        if admin_key is None and stage == LOCAL_STAGE:
            admin_key = LOCAL_ADMIN_KEY
        return cls(
            stage=stage,
            aws_region=(env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1").strip(),
            aws_endpoint_url=_opt(env, "AWS_ENDPOINT_URL"),
            table_name=(env.get("QBSYNC_TABLE") or "qbsync").strip(),
            transfer_queue_url=_opt(env, "QBSYNC_TRANSFER_QUEUE_URL"),
            transfer_dlq_url=_opt(env, "QBSYNC_TRANSFER_DLQ_URL"),
            event_bus=_opt(env, "QBSYNC_EVENT_BUS"),
            kms_key_id=_opt(env, "QBSYNC_KMS_KEY_ID"),
            admin_key=admin_key,
            admin_key_secret_arn=_opt(env, "QBSYNC_ADMIN_KEY_SECRET_ARN"),
            qbo_client_id=_opt(env, "QBO_CLIENT_ID"),
            qbo_client_secret=_opt(env, "QBO_CLIENT_SECRET"),
            qbo_client_secret_arn=_opt(env, "QBO_CLIENT_SECRET_ARN"),
            qbo_redirect_uri=_opt(env, "QBO_REDIRECT_URI"),
            qbo_environment=(env.get("QBO_ENVIRONMENT") or "sandbox").strip(),
            qbo_api_base_url=_opt(env, "QBO_API_BASE_URL"),
            qbo_webhook_verifier_token=_opt(env, "QBO_WEBHOOK_VERIFIER_TOKEN"),
            qbo_webhook_verifier_token_arn=_opt(env, "QBO_WEBHOOK_VERIFIER_TOKEN_ARN"),
            public_base_url=_opt(env, "QBSYNC_PUBLIC_URL"),
            console_origins=parse_origins(env.get("QBSYNC_CONSOLE_ORIGINS", "")),
            max_body_bytes=_int(env, "QBSYNC_MAX_BODY_BYTES", 2 * 1024 * 1024),
            max_soap_bytes=_int(env, "QBSYNC_MAX_SOAP_BYTES", 6_000_000),
            wc_max_requests=_int(env, "QBSYNC_WC_MAX_REQUESTS", 0) or None,
            api_key_cache_seconds=_int(env, "QBSYNC_API_KEY_CACHE_SECONDS", 60),
            console_session_minutes=_int(env, "QBSYNC_CONSOLE_SESSION_MINUTES", 60),
            log_level=(env.get("POWERTOOLS_LOG_LEVEL") or env.get("LOG_LEVEL") or "INFO").strip(),
        )

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process, read once (lazily, never at import time)."""
    return Settings.from_env()


def reset_settings() -> None:
    """Forget the cached settings (tests and the local stack change the environment)."""
    get_settings.cache_clear()
