"""Tenant use cases: create tenants, authenticate API keys and the admin key, read and change settings."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from qbsync import aws
from qbsync.clock import Clock, SystemClock, iso
from qbsync.errors import NotConfigured, NotFound, TenantInactive, Unauthorized
from qbsync.models import TenantAdminPatch, TenantSettings, merge_patch, validate_model
from qbsync.security import (
    constant_time_equals,
    dummy_hash,
    fingerprint,
    hash_secret,
    new_secret,
    verify_secret,
)
from qbsync.settings import Settings
from qbsync.store.ports import ApiKey, Page, Tenant, TenantRepository

API_KEY_PREFIX = "qbs"


def format_api_key(key_id: str, secret: str) -> str:
    return f"{API_KEY_PREFIX}_{key_id}_{secret}"


def parse_api_key(api_key: str) -> tuple[str, str] | None:
    """``qbs_<16 hex key id>_<secret>`` → (key_id, secret); None when it cannot be one of ours."""
    parts = api_key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    key_id, secret = parts[1], parts[2]
    if len(key_id) != 16 or any(c not in "0123456789abcdef" for c in key_id) or not 20 <= len(secret) <= 128:
        return None
    return key_id, secret


class _TtlCache:
    """Remembers which API keys verified recently, so scrypt runs once per key per minute, not per request.

    Keys are SHA-256 fingerprints of the presented key (never the key itself); entries expire after ``ttl``.
    """

    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] < time.monotonic():
                self._entries.pop(key, None)
                return None
            return found[1]

    def put(self, key: str, value: str) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


@dataclass
class CreatedTenant:
    tenant: Tenant
    api_key: str  # plaintext, returned exactly once


class TenantService:
    def __init__(self, tenants: TenantRepository, *, clock: Clock | None = None, key_cache_seconds: int = 60) -> None:
        self.tenants = tenants
        self.clock = clock or SystemClock()
        self._verified = _TtlCache(key_cache_seconds)

    def create(self, name: str, settings: TenantSettings | None = None) -> CreatedTenant:
        now = iso(self.clock.now())
        tenant = Tenant(
            tenant_id=new_tenant_id(),
            name=name,
            status="active",
            settings=(settings or TenantSettings()).model_dump(mode="json"),
            created_at=now,
            updated_at=now,
        )
        key_id, secret = new_key_id(), new_secret()
        record = ApiKey(key_id=key_id, tenant_id=tenant.tenant_id, secret_hash=hash_secret(secret), created_at=now)
        self.tenants.create(tenant, record)
        return CreatedTenant(tenant=tenant, api_key=format_api_key(key_id, secret))

    def authenticate(self, api_key: str) -> Tenant:
        """The active tenant owning ``api_key``. Unauthorized for any unknown/revoked/malformed key."""
        digest = fingerprint(api_key)
        tenant_id = self._verified.get(digest)
        if tenant_id is None:
            parsed = parse_api_key(api_key)
            record = self.tenants.get_api_key(parsed[0]) if parsed else None
            # An unknown key id costs the same scrypt as a wrong secret: timing does not tell which ids exist.
            valid = parsed is not None and verify_secret(parsed[1], record.secret_hash if record else dummy_hash())
            if parsed is None or record is None or record.revoked or not valid:
                raise Unauthorized("The API key is not valid.")
            tenant_id = record.tenant_id
            self._verified.put(digest, tenant_id)
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            raise Unauthorized("The API key is not valid.")
        if not tenant.is_active:
            raise TenantInactive("This tenant is inactive.")
        return tenant

    def get(self, tenant_id: str) -> Tenant:
        tenant = self.tenants.get(tenant_id)
        if tenant is None:
            raise NotFound(f"No tenant {tenant_id}.")
        return tenant

    def list(self, *, limit: int, cursor: str | None) -> Page[Tenant]:
        return self.tenants.list(limit=limit, cursor=cursor)

    def update_settings(self, tenant: Tenant, patch: dict[str, Any]) -> Tenant:
        """Apply a JSON merge patch to the settings; the whole result must validate."""
        merged = merge_patch(tenant.settings, patch)
        settings = validate_model(TenantSettings, merged)
        tenant.settings = settings.model_dump(mode="json")
        tenant.updated_at = iso(self.clock.now())
        return self.tenants.update(tenant)

    def admin_update(self, tenant_id: str, patch: TenantAdminPatch) -> Tenant:
        tenant = self.get(tenant_id)
        if patch.name is not None:
            tenant.name = patch.name
        if patch.status is not None:
            tenant.status = patch.status
        tenant.updated_at = iso(self.clock.now())
        saved = self.tenants.update(tenant)
        self._verified.clear()  # a deactivated tenant must be refused at once, not after the cache expires
        return saved


def settings_of(tenant: Tenant) -> TenantSettings:
    """The tenant's settings as a model (stored settings are validated on write, so this cannot fail)."""
    return TenantSettings.model_validate(tenant.settings)


def new_tenant_id() -> str:
    return "t_" + secrets.token_hex(10)


def new_key_id() -> str:
    return secrets.token_hex(8)


class AdminAuthenticator:
    """Checks the admin key: the configured one locally, the Secrets Manager one when deployed (never defaulted)."""

    def __init__(self, settings: Settings, *, cache_seconds: int = 300) -> None:
        self.settings = settings
        self.cache_seconds = cache_seconds
        self._secret: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def _expected(self) -> str:
        if self.settings.admin_key:
            return self.settings.admin_key
        if not self.settings.admin_key_secret_arn:
            raise NotConfigured("No admin key is configured (QBSYNC_ADMIN_KEY_SECRET_ARN).")
        with self._lock:
            if self._secret is None or self._secret[0] < time.monotonic():
                response = aws.client("secretsmanager", self.settings).get_secret_value(
                    SecretId=self.settings.admin_key_secret_arn
                )
                self._secret = (time.monotonic() + self.cache_seconds, str(response["SecretString"]).strip())
            return self._secret[1]

    def check(self, presented: str) -> None:
        if not presented or not constant_time_equals(presented, self._expected()):
            raise Unauthorized("The admin key is not valid.")
