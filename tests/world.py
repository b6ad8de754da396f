"""A whole qbsync in one process, for the reliability and security suites: the real Chalice app (in-process client
and, when a Web Connector must talk to it, a loopback server), the real use cases over the in-memory store, queue
and event publisher, QuickBooks Online through the emulator (OAuth included) and QuickBooks Desktop through the
Web Connector simulator and the fake company file.

Only the adapters that need AWS are swapped: the transfer queue and event bus for their in-memory ports, KMS for
the test cipher and the DynamoDB rate limiter for none (the emulator's limits stay off unless a test sets them).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from chalice.test import Client

from infra.fake_qbd import FakeCompany
from infra.qbo_emulator import QboEmulator
from infra.wc_sim import Faults, UpdateResult, WebConnectorSimulator
from qbsync.api.services import Services, use_services
from qbsync.events import MemoryPublisher
from qbsync.qbo.client import QboClient
from qbsync.qbo.limiter import NoLimiter
from qbsync.qbo.tokens import InsecureTestCipher
from qbsync.qbwc.protocol import INTUIT_NS
from qbsync.queue import MemoryTransferQueue
from qbsync.settings import Settings
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import Store
from qbsync.transfers import MessageMeta, get_dispatcher, use_dispatcher
from tests.conftest import ADMIN_KEY, Api
from tests.qbwc import body_payload, build_envelope
from tests.support import load_function_module, serve_api

WEBHOOK_TOKEN = "wh-verifier-7f3c9a1e5b2d4c6e8a0b"
PUBLIC_URL = "https://qbsync.example.test"


@dataclass
class Tenant:
    tenant_id: str
    api_key: str


@dataclass
class World:
    emulator: QboEmulator
    settings: Settings
    store: Store
    queue: MemoryTransferQueue
    events: MemoryPublisher
    services: Services
    api: Api
    stack: contextlib.ExitStack
    responses: list[Any] = field(default_factory=list)  # every API response this world's helpers received
    soap_url: str | None = None
    receives: dict[str, int] = field(default_factory=dict)  # deduplication id → times received
    redelivered: int = 0
    sleeps: list[float] = field(default_factory=list)  # what the QuickBooks Online client would have slept

    # --- REST ------------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> Any:
        response = self.api.request(method, path, key=key, **kwargs)
        self.responses.append(response)
        return response

    def ok(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> Any:
        response = self.call(method, path, key=key, **kwargs)
        assert 200 <= response.status_code < 300, (method, path, response.status_code, response.body)
        if not response.body or "json" not in response.headers.get("Content-Type", ""):
            return response.body
        return json.loads(response.body)

    def tenant(self, name: str, **settings: Any) -> Tenant:
        created = self.ok("POST", "/v1/tenants", key=ADMIN_KEY, json_body={"name": name})
        tenant = Tenant(created["tenant_id"], created["api_key"])
        if settings:
            self.ok("PATCH", "/v1/tenant/settings", key=tenant.api_key, json_body=settings)
        return tenant

    # --- QuickBooks Online -----------------------------------------------------------------------------------

    def authorize(self, tenant: Tenant, realm: str | None = None) -> dict[str, str]:
        """Start connecting and let the emulator consent: the callback's query parameters (code, state, realmId
        or error) as Intuit would send the browser back with them."""
        url = self.ok("GET", "/v1/qbo/connect", key=tenant.api_key)["authorization_url"]
        if realm is not None:
            url += f"&realmId={realm}"
        answer = requests.get(url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        location = urlsplit(answer.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{PUBLIC_URL}/qbo/callback"
        return {k: v[0] for k, v in parse_qs(location.query).items()}

    def callback(self, params: dict[str, str]) -> Any:
        query = "&".join(f"{k}={requests.utils.quote(v, safe='')}" for k, v in params.items())
        return self.call("GET", f"/qbo/callback?{query}")

    def connect_qbo(self, tenant: Tenant, company_name: str) -> str:
        realm = self.emulator.add_company(name=company_name)
        answer = self.callback(self.authorize(tenant, realm))
        assert answer.status_code == 200, answer.body
        self.drain()  # the initial import marks the connection connected
        assert self.ok("GET", "/v1/qbo/connection", key=tenant.api_key)["status"] == "connected"
        return realm

    # --- the transfer queue ----------------------------------------------------------------------------------

    def drain(
        self,
        *,
        deliveries: int = 1,
        redeliver: bool = False,
        max_receives: int = 5,
        stop_after: int | None = None,
        limit: int = 5_000,
    ) -> int:
        """Hand every queued message to its handler in order, ``deliveries`` times each (SQS redelivering work
        that was done). With ``redeliver`` a handler that raises gets its message back at the head of the queue
        (FIFO: its group waits), up to ``max_receives`` receives, then the error propagates (the DLQ's turn).
        ``stop_after``: return after that many handlings (a batch cut short). Returns the handlings done."""
        handled = 0
        dispatcher = get_dispatcher()
        for _ in range(limit):
            if not self.queue.sent or (stop_after is not None and handled >= stop_after):
                return handled
            message, group, dedup = self.queue.sent.pop(0)
            for _delivery in range(deliveries):
                count = self.receives[dedup] = self.receives.get(dedup, 0) + 1
                try:
                    dispatcher.dispatch(message.model_dump_json(), MessageMeta(f"m{handled}", group, count))
                except Exception:
                    if not redeliver or count >= max_receives:
                        raise
                    self.queue.sent.insert(0, (message, group, dedup))
                    self.redelivered += 1
                    break
                handled += 1
        raise AssertionError("the transfer queue never drained")

    # --- QuickBooks Desktop ----------------------------------------------------------------------------------

    def soap(self, operation: str, params: dict[str, str | None] | None = None, *, raw: bytes | None = None) -> Any:
        """One Web Connector SOAP call through the app (the in-process client); the HTTP response."""
        body = raw if raw is not None else build_envelope(operation, params)
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"http://developer.intuit.com/{operation}"',
        }
        response = self.api.request("POST", "/qbwc", body=body, headers=headers)
        self.responses.append(response)
        return response

    def soap_result(self, operation: str, params: dict[str, str | None] | None = None) -> list[str]:
        """The texts in ``<operationResult>`` (one for a string result, several for a string array)."""
        response = self.soap(operation, params)
        assert response.status_code == 200, response.body
        payload = body_payload(response.body)
        result = payload.find(f"{{{INTUIT_NS}}}{operation}Result")
        assert result is not None, response.body
        children = [c for c in result if isinstance(c.tag, str)]
        return [c.text or "" for c in children] if children else [result.text or ""]

    def send_request_xml(self, ticket: str) -> str:
        return self.soap_result(
            "sendRequestXML",
            {
                "ticket": ticket,
                "strHCPResponse": None,
                "strCompanyFileName": "C:\\Company.QBW",
                "qbXMLCountry": "US",
                "qbXMLMajorVers": "13",
                "qbXMLMinorVers": "0",
            },
        )[0]

    def web_connector(
        self,
        username: str,
        password: str,
        company: FakeCompany,
        *,
        faults: Faults | None = None,
        session: requests.Session | None = None,
    ) -> UpdateResult:
        if self.soap_url is None:
            self.soap_url = f"{self.stack.enter_context(serve_api())}/qbwc"
        return WebConnectorSimulator(
            self.soap_url,
            username,
            password,
            company,
            timeout=30,
            max_seconds=120,
            faults=faults,
            session=session,
            noop_wait_seconds=0.0,
        ).run_update()


@contextlib.contextmanager
def build_world(monkeypatch: pytest.MonkeyPatch, *, dynamo: bool = False) -> Iterator[World]:
    """``dynamo``: the DynamoDB adapter over moto (table from template.yaml) instead of the in-memory store."""
    # The deployed limiter is DynamoDB's; here every caller shares none (the emulator enforces Intuit's limits
    # only when a test turns them on).
    monkeypatch.setattr("qbsync.qbo.client.DynamoRealmLimiter", lambda settings: NoLimiter())
    # Retries back off for real seconds; here they are recorded instead of slept.
    sleeps: list[float] = []
    for_settings = QboClient.for_settings.__func__  # type: ignore[attr-defined]

    def recording_client(cls: type[QboClient], *args: Any, **kwargs: Any) -> QboClient:
        kwargs.setdefault("sleep", sleeps.append)
        return for_settings(cls, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(QboClient, "for_settings", classmethod(recording_client))
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(QboEmulator())
        settings = Settings(
            stage="test",
            admin_key=ADMIN_KEY,
            api_key_cache_seconds=60,
            max_body_bytes=1024 * 1024,
            qbo_client_id=emulator.client_id,
            qbo_client_secret=emulator.client_secret,
            qbo_environment=emulator.discovery_url,
            qbo_api_base_url=emulator.api_base_url,
            qbo_webhook_verifier_token=WEBHOOK_TOKEN,
            public_base_url=PUBLIC_URL,
        )
        store: Any = MemoryStore()
        if dynamo:
            from moto import mock_aws

            from infra.dynamo_table import create_table_from_template
            from qbsync import aws
            from qbsync.store.dynamo import DynamoStore

            stack.enter_context(mock_aws())
            create_table_from_template(aws.client("dynamodb", settings), settings.table_name)
            store = DynamoStore(settings)
        queue, events = MemoryTransferQueue(), MemoryPublisher()
        services = Services.build(settings, store, events=events, queue=queue, cipher=InsecureTestCipher())
        use_services(services)
        use_dispatcher(None)
        client = stack.enter_context(Client(load_function_module("api").app))
        try:
            yield World(emulator, settings, store, queue, events, services, Api(client), stack, sleeps=sleeps)
        finally:
            use_services(None)
            use_dispatcher(None)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with build_world(monkeypatch) as built:
        yield built
