"""Lazily built, cached boto3 clients. Never build a client at import time: it would escape moto and
slow every cold start. ``reset_clients()`` drops the cache (tests, local stack restarts)."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from qbsync.settings import Settings, get_settings

_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None], Any] = {}

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    tcp_keepalive=True,
)


def client(service: str, settings: Settings | None = None) -> Any:
    """A boto3 client for ``service`` pointed at the settings' region and (for embedded AWS) endpoint."""
    settings = settings or get_settings()
    key = (service, settings.aws_region, settings.aws_endpoint_url)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            session = boto3.session.Session(region_name=settings.aws_region)
            found = session.client(service, endpoint_url=settings.aws_endpoint_url, config=_CONFIG)  # type: ignore[call-overload]
            _clients[key] = found
        return found


def reset_clients() -> None:
    with _lock:
        _clients.clear()
