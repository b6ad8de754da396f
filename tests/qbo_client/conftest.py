"""Fixtures for the QBO client tests: the scripted fake API, fake tokens, a fake clock/sleep, log capture."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qbsync.qbo.client import QboClient, RetryPolicy
from tests.qbo_client.fake_qbo import FakeQbo
from tests.support import captured_logs

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "qbo"
REALM = "9130350000000001"


def reference(relative: str) -> Any:
    path = REFERENCE / relative
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else text


class FakeTokens:
    def __init__(self) -> None:
        self.current = "tok-secret-1"
        self.refreshes = 0

    def access_token(self) -> str:
        return self.current

    def refreshed_after_401(self) -> str:
        self.refreshes += 1
        self.current = f"tok-secret-{self.refreshes + 1}"
        return self.current


class FakeTime:
    """A clock that only moves when someone sleeps (thread-safe)."""

    def __init__(self, start: float = 1_700_000_040.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def qbo() -> Iterator[FakeQbo]:
    server = FakeQbo().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tokens() -> FakeTokens:
    return FakeTokens()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(qbo: FakeQbo, tokens: FakeTokens, fake_time: FakeTime) -> Callable[..., QboClient]:
    def make(**kwargs: Any) -> QboClient:
        kwargs.setdefault("clock", fake_time.clock)
        kwargs.setdefault("sleep", fake_time.sleep)
        kwargs.setdefault("rng", lambda: 0.5)
        kwargs.setdefault("retry", RetryPolicy())
        return QboClient(REALM, tokens, base_url=qbo.base_url, **kwargs)

    return make


@pytest.fixture
def client(make_client: Callable[..., QboClient]) -> QboClient:
    return make_client()


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    with captured_logs() as buffer:
        yield buffer
