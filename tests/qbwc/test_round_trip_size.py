"""QBSYNC_WC_MAX_REQUESTS caps the requests packed into one sendRequestXML (1 = the one-request-per-round-trip
baseline `make bench` compares against); unset, the service's own default packs up to 100."""

from __future__ import annotations

import pytest
import requests
from chalice.test import Client

from infra.fake_qbd import FakeCompany
from infra.wc_sim import WebConnectorSimulator
from qbsync.api.services import Services, use_services
from qbsync.connectors import ConnectorCreate
from qbsync.qbxml import Customer
from qbsync.settings import Settings, SettingsError
from qbsync.store.memory import MemoryStore
from qbsync.tenancy import TenantService
from tests.benchmarks.harness import AwsMeter, ChaliceAdapter
from tests.support import load_function_module

PASSWORD = "correct horse battery"


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).wc_max_requests is None
    assert Settings.from_env({"QBSYNC_WC_MAX_REQUESTS": "1"}).wc_max_requests == 1
    with pytest.raises(SettingsError, match="QBSYNC_WC_MAX_REQUESTS"):
        Settings.from_env({"QBSYNC_WC_MAX_REQUESTS": "0"})


@pytest.mark.parametrize(("cap", "expected"), [(3, [3, 3, 1]), (None, [7])])
def test_requests_per_round_trip_follow_the_setting(cap: int | None, expected: list[int]) -> None:
    store = MemoryStore()
    services = Services.build(Settings(stage="test", admin_key="x", wc_max_requests=cap), store)
    use_services(services)
    tenant = TenantService(store.tenants).create("Acme").tenant
    connector = services.connectors.create(tenant, ConnectorCreate(name="Main", username="acme-qb", password=PASSWORD))
    for i in range(7):
        services.jobs.enqueue(tenant.tenant_id, connector.connector_id, "customer_add", Customer(name=f"Client {i}"))
    company = FakeCompany()
    with Client(load_function_module("api").app) as client:
        session = requests.Session()
        session.mount("http://test.local/", ChaliceAdapter(client, AwsMeter()))
        result = WebConnectorSimulator(
            "http://test.local/qbwc", "acme-qb", PASSWORD, company, session=session, noop_wait_seconds=0
        ).run_update()
    assert result.ok, result.summary()
    assert result.requests_per_round_trip == expected
    assert company.count("Customer") == 7
