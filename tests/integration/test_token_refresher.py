"""The scheduled token refresher against the QBO emulator, with KMS under moto: idle connections are refreshed
before their rolling expiry, the hard-expiry warning goes out once, invalid_grant means needs_reauth."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from moto import mock_aws

from infra.dynamo_table import create_table_from_template
from infra.qbo_emulator import QboEmulator
from qbsync import aws
from qbsync.events import MemoryPublisher
from qbsync.qbo.oauth import TokenSet
from qbsync.qbo.tokens import KmsTokenCipher, TokenManager
from qbsync.schedules import DAY, token_refresh_job
from qbsync.settings import Settings
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import QboConnection


@pytest.fixture
def emulator() -> Iterator[QboEmulator]:
    with QboEmulator() as running:
        yield running


@pytest.fixture
def settings(emulator: QboEmulator) -> Iterator[Settings]:
    with mock_aws():
        key = aws.client("kms", Settings()).create_key()["KeyMetadata"]["KeyId"]
        # The health check reads CompanyInfo through the deployed client, whose per-realm limiter is DynamoDB.
        create_table_from_template(aws.client("dynamodb", Settings()), "qbsync")
        yield Settings(
            stage="test",
            kms_key_id=key,
            qbo_environment=emulator.discovery_url,
            qbo_api_base_url=emulator.api_base_url,
            qbo_client_id=emulator.client_id,
            qbo_client_secret=emulator.client_secret,
        )


def connect(
    store: MemoryStore,
    settings: Settings,
    emulator: QboEmulator,
    tenant_id: str,
    *,
    refresh_in_days: float,
    hard_in_days: float | None,
) -> None:
    realm = emulator.add_company(name=f"Co {tenant_id}")
    issued = emulator.issue_tokens(realm)
    now = time.time()
    tokens = TokenSet(
        issued["access_token"],
        issued["refresh_token"],
        int(now) + 3600,
        int(now + refresh_in_days * DAY),
        int(now + hard_in_days * DAY) if hard_in_days else None,
    )
    manager = TokenManager(store, KmsTokenCipher(settings), None, MemoryPublisher())  # type: ignore[arg-type]
    store.qbo.create(
        QboConnection(
            tenant_id=tenant_id,
            realm_id=realm,
            status="connected",
            company_name=f"Co {tenant_id}",
            tokens=manager.seal(tenant_id, realm, tokens),
            access_expires_at=tokens.access_expires_at,
            refresh_expires_at=tokens.refresh_expires_at,
            hard_expires_at=tokens.hard_expires_at,
            connected_at="2026-01-01T00:00:00.000Z",
            updated_at="2026-01-01T00:00:00.000Z",
        )
    )


def test_idle_connections_are_kept_alive_and_warned_once(settings: Settings, emulator: QboEmulator) -> None:
    store = MemoryStore()
    connect(store, settings, emulator, "t_idle", refresh_in_days=10, hard_in_days=None)
    connect(store, settings, emulator, "t_ending", refresh_in_days=95, hard_in_days=20)
    first = token_refresh_job(store, settings)()
    assert first == {
        "connections": 2,
        "refreshed": 1,
        "needs_reauth": 0,
        "warnings": 1,
        "health_checked": 2,  # both companies read (CompanyInfo) and fine
        "qbo_unhealthy": 0,
        "connectors_stale": 0,
    }
    idle = store.qbo.get("t_idle")
    assert idle is not None and idle.tokens_version == 2 and idle.refresh_expires_at > time.time() + 90 * DAY
    ending = store.qbo.get("t_ending")
    assert ending is not None and ending.warnings_sent == ["hard_expiry_30d"] and ending.tokens_version == 1
    assert [r["outcome"] for r in emulator.token_requests if r["grant_type"] == "refresh_token"] == ["ok"]
    second = token_refresh_job(store, settings)()
    assert second == {
        "connections": 2,
        "refreshed": 0,
        "needs_reauth": 0,
        "warnings": 0,
        "health_checked": 0,  # checked recently: no metered read this time
        "qbo_unhealthy": 0,
        "connectors_stale": 0,
    }


def test_a_refused_refresh_token_moves_the_connection_to_needs_reauth(
    settings: Settings, emulator: QboEmulator
) -> None:
    store = MemoryStore()
    connect(store, settings, emulator, "t1", refresh_in_days=5, hard_in_days=None)
    emulator.faults.invalid_grant_next_refresh = True
    outcome = token_refresh_job(store, settings)()
    assert outcome["needs_reauth"] == 1 and outcome["refreshed"] == 0
    stored = store.qbo.get("t1")
    assert stored is not None and stored.status == "needs_reauth" and stored.last_error
