"""Secrets never reach the log output: not as fields, not inside messages, not from failed logins."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from qbsync.observability import get_logger, redact
from tests.conftest import ADMIN_KEY, Api
from tests.support import captured_logs


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    with captured_logs() as buffer:
        yield buffer


def test_api_keys_and_admin_key_never_logged(api: Api, log_output: io.StringIO) -> None:
    created = api.create_tenant()
    key = created["api_key"]
    api.request("GET", "/v1/tenant", key=key)
    api.request("GET", "/v1/tenant", key=key[:-3] + "zzz")  # failed login is logged
    api.request("POST", "/v1/tenants", key=ADMIN_KEY + "wrong", json_body={"name": "x"})
    logger = get_logger()
    logger.info("caller sent", extra={"api_key": key, "password": "hunter2", "note": f"Authorization: Bearer {key}"})
    logger.info(f"web connector said <strPassword>hunter2</strPassword> and key {key}")
    logger.info("oauth", extra={"refresh_token": "RT1-abc", "body": '{"access_token": "eyJabc"}'})
    output = log_output.getvalue()
    assert output.count("\n") >= 5  # the requests and our lines really were logged
    for secret in (key, key.split("_", 2)[2], ADMIN_KEY, "hunter2", "RT1-abc", "eyJabc"):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(line.get("password") == "***" for line in lines)
    assert all("level" in line and "service" in line for line in lines)


def test_redact_keeps_what_is_not_secret() -> None:
    assert redact({"tenant_id": "t_1", "count": 3, "token_expires_at": None}) == {
        "tenant_id": "t_1",
        "count": 3,
        "token_expires_at": None,
    }
    assert redact("GET /v1/tenant?limit=3") == "GET /v1/tenant?limit=3"


def test_only_the_redacting_handler_writes_qbsync_logs(api: Api) -> None:
    """Chalice and Powertools share the "qbsync" logger name; a second handler would print unredacted lines."""
    import logging

    handlers = logging.getLogger("qbsync").handlers
    assert handlers == [get_logger().registered_handler]
