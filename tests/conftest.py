"""Fixtures shared by every suite: a clean environment, fresh caches, and the API over the in-memory store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from infra.moto_speedups import install as install_moto_speedups
from qbsync import aws
from qbsync.api.services import Services, use_services
from qbsync.settings import Settings, reset_settings
from qbsync.store.factory import reset_store
from qbsync.store.memory import MemoryStore
from qbsync.transfers import use_dispatcher
from tests.support import load_function_module

install_moto_speedups()  # same answers (tests/unit/test_moto_speedups.py), without moto's full-table scans

ADMIN_KEY = "test-admin-key-0123456789"


@pytest.fixture(autouse=True)
def clean_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's AWS credentials, endpoints or qbsync settings; caches start empty.

    End-to-end tests are left alone: their local stack's worker threads run between tests, and clearing the
    environment under them would make a worker build its clients without the embedded AWS endpoint."""
    import os

    if request.node.get_closest_marker("e2e") is not None:
        yield
        return

    for name in list(os.environ):
        if name.startswith(("QBSYNC_", "QBO_", "AWS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
    _reset_caches()
    yield
    _reset_caches()


def _reset_caches() -> None:
    reset_settings()
    aws.reset_clients()
    reset_store()
    use_services(None)
    use_dispatcher(None)


@pytest.fixture
def settings() -> Settings:
    return Settings(stage="test", admin_key=ADMIN_KEY, api_key_cache_seconds=60, max_body_bytes=1024 * 1024)


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def services(settings: Settings, memory_store: MemoryStore) -> Services:
    built = Services.build(settings, memory_store)
    use_services(built)
    return built


class Api:
    """A thin wrapper over Chalice's test client that speaks JSON and bearer keys."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def request(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json_body: Any = None,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = dict(headers or {})
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        if json_body is not None:
            body = json.dumps(json_body)
            all_headers.setdefault("Content-Type", "application/json")
        return self.client.http.request(method, path, headers=all_headers, body=body or b"")

    def create_tenant(self, name: str = "Acme Billing") -> dict[str, Any]:
        response = self.request("POST", "/v1/tenants", key=ADMIN_KEY, json_body={"name": name})
        assert response.status_code == 201, response.body
        return json.loads(response.body)


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    app = load_function_module("api").app
    with Client(app) as client:
        yield Api(client)
