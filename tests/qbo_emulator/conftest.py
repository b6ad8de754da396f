"""Fixtures for the QBO emulator suite: a running emulator, a company, and a small authenticated HTTP client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.qbo_emulator import QboEmulator

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "qbo"


class FakeClock:
    """A settable clock so token expiry and rate windows are deterministic."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Api:
    """Minimal v3 client: JSON in/out, bearer token, realm-scoped paths."""

    def __init__(self, emu: QboEmulator, realm: str, token: str) -> None:
        self.emu = emu
        self.realm = realm
        self.token = token
        self.session = requests.Session()

    def url(self, path: str) -> str:
        return f"{self.emu.api_base_url}/v3/company/{self.realm}/{path}"

    def headers(self, accept: str = "application/json") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": accept}

    def get(self, path: str, accept: str = "application/json", **params: Any) -> requests.Response:
        params.setdefault("minorversion", "75")
        return self.session.get(self.url(path), params=params, headers=self.headers(accept), timeout=10)

    def post(self, path: str, body: Any, accept: str = "application/json", **params: Any) -> requests.Response:
        params.setdefault("minorversion", "75")
        headers = {**self.headers(accept), "Content-Type": "application/json"}
        return self.session.post(self.url(path), params=params, data=json.dumps(body), headers=headers, timeout=10)

    def query(self, text: str) -> requests.Response:
        return self.get("query", query=text)

    def create(self, entity: str, body: dict[str, Any], **params: Any) -> dict[str, Any]:
        response = self.post(entity.lower(), body, **params)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()[entity]
        return result


def reference_json(name: str) -> Any:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference file {path} not available")
    return json.loads(path.read_text())


def reference_example(name: str, top_key: str) -> dict[str, Any]:
    """First example in ``examples/<name>`` whose JSON has ``top_key`` at the top level."""
    for example in reference_json(f"examples/{name}")["examples"]:
        body = example.get("json")
        if isinstance(body, dict) and top_key in body:
            return body
    raise AssertionError(f"no example with {top_key} in {name}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu() -> Iterator[QboEmulator]:
    with QboEmulator() as emulator:
        yield emulator


@pytest.fixture
def clocked_emu(clock: FakeClock) -> Iterator[QboEmulator]:
    with QboEmulator(clock=clock) as emulator:
        yield emulator


@pytest.fixture
def api(emu: QboEmulator) -> Api:
    realm = emu.add_company(name="Test Co")
    return Api(emu, realm, emu.issue_tokens(realm)["access_token"])


def fault_error(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"Fault", "time"}, body
    error: dict[str, Any] = body["Fault"]["Error"][0]
    assert set(error) == {"Message", "Detail", "code", "element"}
    return error
