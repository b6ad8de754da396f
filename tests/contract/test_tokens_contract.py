"""Token care on both store adapters (DynamoDB side with real KMS under moto): single-flight refresh, rotation
stored atomically, invalid_grant → needs_reauth, and never a plaintext token in storage."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from qbsync import aws
from qbsync.events import MemoryPublisher
from qbsync.qbo.oauth import InvalidGrant, TokenSet
from qbsync.qbo.tokens import InsecureTestCipher, KmsTokenCipher, NeedsReauth, TokenManager
from qbsync.settings import Settings
from qbsync.store.dynamo import DynamoStore
from qbsync.store.ports import QboConnection, Store
from tests.contract.test_store_contract import at, run_concurrently

NOW = 1_800_000_000


@dataclass
class FakeIntuit:
    """Rotates on every refresh (the old refresh token dies at once), like the strictest reading of Intuit."""

    current_refresh: str = "rt-0"
    refreshes: int = 0
    invalid_grant: bool = False
    delay: float = 0.05
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self, refresh_token: str) -> TokenSet:
        time.sleep(self.delay)  # a slow Intuit widens the race window
        with self.lock:
            if self.invalid_grant or refresh_token != self.current_refresh:
                raise InvalidGrant("Incorrect or invalid refresh token")
            self.refreshes += 1
            self.current_refresh = f"rt-{self.refreshes}"
            return TokenSet(f"at-{self.refreshes}", self.current_refresh, NOW + 3600, NOW + 100 * 86400, None)

    def refresh_client(self) -> FakeIntuit:
        return self


def manager_for(store: Store, intuit: FakeIntuit, events: MemoryPublisher, settings: Settings) -> TokenManager:
    if isinstance(store, DynamoStore):
        key = aws.client("kms", settings).create_key()["KeyMetadata"]["KeyId"]
        cipher = KmsTokenCipher(Settings(stage="test", kms_key_id=key))
    else:
        cipher = InsecureTestCipher()  # type: ignore[assignment]
    return TokenManager(store, cipher, intuit, events, epoch=lambda: NOW, sleep=time.sleep, wait_seconds=30)  # type: ignore[arg-type]


def connect(manager: TokenManager, store: Store, *, access_expires_at: int = NOW - 10) -> None:
    tokens = TokenSet("at-0", "rt-0", access_expires_at, NOW + 100 * 86400, None)
    store.qbo.create(
        QboConnection(
            tenant_id="t1",
            realm_id="9130350000000001",
            status="connected",
            company_name="Sandbox Co",
            tokens=manager.seal("t1", "9130350000000001", tokens),
            access_expires_at=access_expires_at,
            refresh_expires_at=tokens.refresh_expires_at,
            connected_at=at(0),
            updated_at=at(0),
        )
    )


def test_twenty_workers_with_an_expired_token_cause_exactly_one_refresh(store: Store, settings: Settings) -> None:
    intuit, events = FakeIntuit(), MemoryPublisher()
    manager = manager_for(store, intuit, events, settings)
    connect(manager, store)
    results = run_concurrently(lambda _: manager.access_token("t1"), n=20)
    assert results == ["at-1"] * 20, results
    assert intuit.refreshes == 1
    stored = store.qbo.get("t1")
    assert stored is not None and stored.tokens_version == 2 and stored.lease_owner is None
    assert manager.unseal(stored) == ("at-1", "rt-1")  # the rotated refresh token was kept with the access token


def test_a_fresh_token_is_used_without_refreshing(store: Store, settings: Settings) -> None:
    intuit = FakeIntuit()
    manager = manager_for(store, intuit, MemoryPublisher(), settings)
    connect(manager, store, access_expires_at=NOW + 3000)
    assert manager.access_token("t1") == "at-0" and intuit.refreshes == 0


def test_401_forces_one_refresh_even_with_a_fresh_looking_token(store: Store, settings: Settings) -> None:
    intuit = FakeIntuit()
    manager = manager_for(store, intuit, MemoryPublisher(), settings)
    connect(manager, store, access_expires_at=NOW + 3000)
    sources = [manager.token_source("t1") for _ in range(5)]
    for source in sources:
        assert source.access_token() == "at-0"
    assert [s.refreshed_after_401() for s in sources] == ["at-1"] * 5  # the first refreshes, the rest see it
    assert intuit.refreshes == 1


def test_invalid_grant_needs_reauth_and_emits_the_event(store: Store, settings: Settings) -> None:
    intuit, events = FakeIntuit(invalid_grant=True), MemoryPublisher()
    manager = manager_for(store, intuit, events, settings)
    connect(manager, store)
    with pytest.raises(NeedsReauth):
        manager.access_token("t1")
    stored = store.qbo.get("t1")
    assert stored is not None and stored.status == "needs_reauth" and stored.lease_owner is None
    [event] = events.of_type("connection.needs_reauth")
    assert event["detail"]["tenant_id"] == "t1" and event["detail"]["realm_id"] == "9130350000000001"
    with pytest.raises(NeedsReauth):  # paused: nobody calls Intuit again until the user reconnects
        manager.access_token("t1")
    assert intuit.refreshes == 0


def test_no_plaintext_token_in_storage(store: Store, settings: Settings) -> None:
    manager = manager_for(store, FakeIntuit(), MemoryPublisher(), settings)
    connect(manager, store)
    manager.access_token("t1")
    if isinstance(store, DynamoStore):
        dump = repr(aws.client("dynamodb", settings).scan(TableName=settings.table_name)["Items"])
    else:
        dump = repr(store.__dict__)
    for token in ("at-0", "rt-0", "at-1", "rt-1"):
        assert token not in dump
    if isinstance(store, DynamoStore):  # KMS binds the blob to its tenant and realm (the test cipher cannot)
        from botocore.exceptions import ClientError

        stored = store.qbo.get("t1")
        assert stored is not None
        with pytest.raises(ClientError):
            manager.cipher.decrypt(stored.tokens, {"purpose": "qbo-tokens", "tenant_id": "t2", "realm_id": "x"})


def test_a_process_reads_and_decrypts_the_access_token_at_most_once_a_minute(store: Store, settings: Settings) -> None:
    intuit = FakeIntuit()
    manager = manager_for(store, intuit, MemoryPublisher(), settings)
    connect(manager, store, access_expires_at=NOW + 3000)
    clock = [float(NOW)]
    manager.epoch = lambda: clock[0]
    repository = store.qbo
    reads = []
    original_get = repository.get

    def counting_get(tenant_id: str) -> QboConnection | None:
        reads.append(tenant_id)
        return original_get(tenant_id)

    repository.get = counting_get  # type: ignore[method-assign]
    try:
        assert [manager.access_token("t1") for _ in range(5)] == ["at-0"] * 5
        assert len(reads) == 1
        clock[0] += 61  # a minute later the store is asked again (a disconnect elsewhere shows within a minute)
        assert manager.access_token("t1") == "at-0" and len(reads) == 2
        manager.forget("t1")  # a disconnect in this process forgets it at once
        assert manager.access_token("t1") == "at-0" and len(reads) == 3
        clock[0] = NOW + 3000 - 300  # within the refresh skew: refreshed, never served stale from the cache
        assert manager.access_token("t1") == "at-1" and intuit.refreshes == 1
    finally:
        repository.get = original_get  # type: ignore[method-assign]
