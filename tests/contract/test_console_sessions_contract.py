"""Admin console sessions (issue 10) behave the same on both adapters: create once, read until expiry, delete."""

from __future__ import annotations

import pytest

from qbsync.errors import AlreadyExists
from qbsync.store.ports import ConsoleSession, Store

HASH = "a" * 64


def _session(session_hash: str = HASH, expires_at: int = 2_000) -> ConsoleSession:
    return ConsoleSession(
        session_hash=session_hash,
        tenant_id="t1",
        key_id="k1",
        csrf_token="csrf-token",
        created_at="2026-11-21T10:00:00.000Z",
        expires_at=expires_at,
    )


def test_a_session_reads_back_until_it_expires(store: Store) -> None:
    store.console_sessions.create(_session())
    found = store.console_sessions.get(HASH, now=1_999)
    assert found == _session()
    assert store.console_sessions.get(HASH, now=2_000) is None  # expired (TTL has not run yet)
    assert store.console_sessions.get("b" * 64, now=1_000) is None


def test_a_session_hash_is_created_once(store: Store) -> None:
    store.console_sessions.create(_session())
    with pytest.raises(AlreadyExists):
        store.console_sessions.create(_session(expires_at=5_000))
    assert store.console_sessions.get(HASH, now=1_000) == _session()


def test_delete_ends_a_session_and_is_idempotent(store: Store) -> None:
    store.console_sessions.create(_session())
    store.console_sessions.delete(HASH)
    store.console_sessions.delete(HASH)
    assert store.console_sessions.get(HASH, now=1_000) is None
