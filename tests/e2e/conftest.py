"""One local stack per e2e module (its environment stays applied: e2e tests skip the per-test clean-up)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra.local_stack import LocalStack
from qbsync.aws import reset_clients
from qbsync.settings import reset_settings


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    saved = dict(os.environ)
    with LocalStack(port=0, scheduler=False) as running:
        yield running
    os.environ.clear()  # the next module's stack must start from the same environment (its own emulator…)
    os.environ.update(saved)
    reset_settings()
    reset_clients()
