"""One contract suite, two adapters: every test taking ``store`` runs against the memory fakes and DynamoDB (moto,
with the table created from template.yaml)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from infra.dynamo_table import create_table_from_template
from qbsync import aws
from qbsync.settings import Settings, reset_settings
from qbsync.store.dynamo import DynamoStore
from qbsync.store.factory import reset_store
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import Store

TABLE = "qbsync-contract"


def _reset() -> None:
    aws.reset_clients()
    reset_settings()
    reset_store()


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and no endpoint override, so nothing can reach real AWS; no cached client escapes moto."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    _reset()
    yield
    _reset()


@pytest.fixture
def settings() -> Settings:
    return Settings(table_name=TABLE, aws_region="us-east-1")


def _serialize_moto_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto handle one request at a time, as DynamoDB applies each request atomically.

    moto's backend has no locks: two threads can both pass a condition before either writes, so the concurrency
    tests would test moto, not our adapter. Client threads still run concurrently; only moto's handling of each
    request is serialized (the moto server would not help: it is threaded over the same backend).
    """
    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


@pytest.fixture(params=["memory", "dynamo"])
def store(request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    _serialize_moto_requests(monkeypatch)
    with mock_aws():
        create_table_from_template(aws.client("dynamodb", settings), settings.table_name)
        yield DynamoStore(settings)
