"""The API client against the QBO emulator under Intuit's real limits and faults. One fake clock drives the
emulator's rate windows, the limiter and the client's back-off, so minutes of traffic run in seconds."""

from __future__ import annotations

import threading

import pytest

from infra.qbo_emulator import QboEmulator
from qbsync.qbo.client import QboClient, RetryPolicy
from qbsync.qbo.limiter import MemoryRealmLimiter, RealmBudget
from qbsync.qbo.requestids import request_id


class SharedClock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += max(seconds, 0.0)


class StaticTokens:
    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refreshed_after_401(self) -> str:
        return self.token


@pytest.fixture
def setup() -> tuple[QboEmulator, str, SharedClock]:
    clock = SharedClock()
    emulator = QboEmulator(clock=clock).start()
    realm = emulator.add_company(name="Burst Co")
    emulator.set_limits(per_minute=500, per_second=10, batch_per_minute=40)
    yield emulator, realm, clock  # type: ignore[misc]
    emulator.stop()


def client_for(emulator: QboEmulator, realm: str, clock: SharedClock, **kwargs: object) -> QboClient:
    token = emulator.issue_tokens(realm)["access_token"]
    return QboClient(
        realm,
        StaticTokens(token),
        base_url=emulator.api_base_url,
        clock=clock,
        sleep=clock.sleep,
        **kwargs,  # type: ignore[arg-type]
    )


def customers(emulator: QboEmulator, realm: str) -> int:
    return len(emulator.company(realm).entities["Customer"])


def test_a_burst_of_2000_writes_under_the_real_limits_draws_no_429(setup: tuple[QboEmulator, str, SharedClock]) -> None:
    emulator, realm, clock = setup
    before = customers(emulator, realm)
    limiter = MemoryRealmLimiter(RealmBudget(), clock=clock, sleep=clock.sleep, max_wait=120)
    client = client_for(emulator, realm, clock, limiter=limiter)
    started = clock()
    for i in range(2000):
        client.create("Customer", {"DisplayName": f"Burst {i:04d}"}, request_id=request_id("burst", str(i)))
    assert emulator.company(realm).throttled == 0  # never a 429 the limiter could have avoided
    assert customers(emulator, realm) == before + 2000
    assert clock() - started >= 2000 / 500 * 60 * 0.95  # and it really paced itself (≈ 500 a minute)


def test_with_429s_and_5xx_after_commit_every_write_lands_exactly_once(
    setup: tuple[QboEmulator, str, SharedClock],
) -> None:
    emulator, realm, clock = setup
    before = customers(emulator, realm)
    emulator.faults.fail_after_commit_5xx = 40  # commit, then answer 500/503: the client cannot know it landed
    retry = RetryPolicy(throttle_retries=8, server_retries=8, max_total_sleep=600)
    client = client_for(emulator, realm, clock, retry=retry)  # no limiter: 429s will be drawn and retried
    for i in range(300):
        client.create("Customer", {"DisplayName": f"Once {i:03d}"}, request_id=request_id("once", str(i)))
    counts = emulator.company(realm).counts
    assert counts["injected_5xx"] == 40 and counts["throttled"] > 0 and counts["replays"] >= 40
    assert customers(emulator, realm) == before + 300  # nothing doubled, nothing lost
    names = [c["DisplayName"] for c in emulator.company(realm).entities["Customer"].values()]
    assert len([n for n in names if n.startswith("Once ")]) == len({n for n in names if n.startswith("Once ")}) == 300
