"""Whole Web Connector conversations: the simulator speaks HTTP to the real app (served on loopback over the
in-memory store) and the fake QuickBooks Desktop company really processes the qbXML. Outcomes are asserted in
the company file, on the jobs and in the connector grid."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
import requests
from lxml import etree

from infra.fake_qbd import FakeCompany
from infra.wc_sim import Faults, WebConnectorSimulator
from qbsync.api.services import Services, use_services
from qbsync.qbwc.service import Limits
from qbsync.qbxml import Customer, Invoice, InvoiceLine, Item
from qbsync.settings import Settings
from qbsync.store.memory import MemoryStore
from qbsync.store.ports import Connector, Tenant
from qbsync.tenancy import TenantService
from tests.support import REFERENCE, serve_api

PASSWORD = "correct horse battery"


@dataclass
class Env:
    url: str
    services: Services
    store: MemoryStore
    tenant: Tenant
    connector: Connector

    def simulator(self, company: FakeCompany, **kwargs: object) -> WebConnectorSimulator:
        return WebConnectorSimulator(
            self.url,
            self.connector.username,
            PASSWORD,
            company,
            owner_id=self.connector.owner_id,
            file_id=self.connector.file_id,
            timeout=30,
            **kwargs,  # type: ignore[arg-type]
        )

    def enqueue(self, kind: str, record: object, **kwargs: object) -> int:
        return self.services.jobs.enqueue(
            self.tenant.tenant_id, self.connector.connector_id, kind, record, **kwargs
        ).seq  # type: ignore[arg-type]

    def refreshed(self) -> Connector:
        found = self.store.connectors.get(self.tenant.tenant_id, self.connector.connector_id)
        assert found is not None
        return found


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with serve_api() as base:
        yield f"{base}/qbwc"


@pytest.fixture
def env(server_url: str) -> Env:
    """A fresh in-memory store behind the server, with a tenant and its default connector."""
    from qbsync.connectors import ConnectorCreate

    store = MemoryStore()
    services = Services.build(Settings(stage="test", admin_key="x"), store)
    use_services(services)
    tenant = TenantService(store.tenants).create("Acme").tenant
    connector = services.connectors.create(tenant, ConnectorCreate(name="Main", username="acme-qb", password=PASSWORD))
    return Env(server_url, services, store, tenant, connector)


def customer(i: int) -> Customer:
    return Customer(name=f"Customer {i:04d}", company_name=f"Company {i}", email=f"c{i}@example.com")


def invoice(i: int) -> Invoice:
    return Invoice(
        customer=f"Customer {i:04d}",
        ref_number=f"INV-{i:05d}",
        txn_date=None,
        lines=(InvoiceLine(item="Consulting", description="Hours", quantity=Decimal(2), rate=Decimal("75.00")),),
    )


class ValidatingCompany(FakeCompany):
    """A fake company that also checks every message set it receives against Intuit's qbXML 13.0 XSD."""

    def __init__(self) -> None:
        super().__init__()
        self.invalid: list[str] = []
        self.documents = 0

    def process(self, request_xml: str) -> str:
        from qbsync.qbxml.xsd import validation_errors

        self.documents += 1
        self.invalid += validation_errors(request_xml, "130")
        return super().process(request_xml)


def test_queued_customers_and_invoices_reach_quickbooks_in_few_round_trips(env: Env) -> None:
    from qbsync.qbxml.xsd import find_xsd

    if find_xsd("130") is None:
        pytest.skip("the Intuit qbXML XSDs are not beside the repository (QBXML_XSD_DIR)")
    company = ValidatingCompany()
    item = env.enqueue("item_add", Item(name="Consulting", income_account="Services", price=Decimal("75.00")))
    for i in range(150):
        c = env.enqueue("customer_add", customer(i))
        env.enqueue("invoice_add", invoice(i), depends_on=[c, item])
    result = env.simulator(company).run_update()
    assert result.ok, result.summary()
    assert company.documents == result.round_trips and company.invalid == []  # every request XSD-valid
    assert company.count("Customer") == 150 and company.count("Invoice") == 150 and company.count("Item") == 1
    assert result.round_trips <= 4 and max(result.requests_per_round_trip) <= 100
    assert result.percents[-1] == 100 and all(p < 100 for p in result.percents[:-1])

    jobs = env.store.jobs.history(env.connector.connector_id, limit=1000)
    assert {j.status for j in jobs} == {"done"}
    invoices = [j for j in jobs if j.kind == "invoice_add"]
    assert all(j.result["txn_id"] and j.result["ref_number"].startswith("INV-") for j in invoices)
    assert all(j.result["list_id"] for j in jobs if j.kind == "customer_add")

    grid = env.refreshed()
    assert grid.last_status == "success" and grid.company_file == company.file_path
    last = grid.conversations[0]
    assert last["status"] == "success" and last["sent"] == {"items": 1, "customers": 150, "invoices": 150}
    assert grid.live_ticket is None


def test_no_work_answers_none_and_wrong_password_nvu(env: Env) -> None:
    company = FakeCompany()
    result = env.simulator(company).run_update()
    assert result.auth_result[1] == "none"
    wrong = WebConnectorSimulator(env.url, env.connector.username, "nope nope nope", company).run_update()
    assert wrong.auth_result[1] == "nvu"
    grid = env.refreshed()
    assert grid.last_login_failure["reason"] == "wrong_password"
    assert grid.conversations[0]["status"] == "login_failed"


def test_failed_dependency_blocks_its_invoice_and_the_grid_says_so(env: Env) -> None:
    company = FakeCompany()
    item = env.enqueue("item_add", Item(name="Consulting", income_account="Services", price=Decimal("75.00")))
    first = env.enqueue("customer_add", customer(1))
    dup = env.enqueue("customer_add", Customer(name="Customer 0001"))  # 3100: the name is in use
    env.enqueue("invoice_add", invoice(1), depends_on=[first, item])
    env.enqueue("invoice_add", Invoice(customer="Ghost", ref_number="INV-X"), depends_on=[dup])  # type: ignore[arg-type]
    result = env.simulator(company).run_update()
    assert result.ok, result.summary()
    jobs = {j.seq: j for j in env.store.jobs.history(env.connector.connector_id)}
    assert jobs[dup].status == "error" and jobs[dup].result["status_code"] == 3100
    assert [j.status for j in jobs.values()] == ["done", "done", "error", "done", "blocked"]
    assert f"depends on job {dup}" in jobs[5].result["reason"]
    assert company.count("Invoice") == 1
    grid = env.refreshed()
    assert grid.last_status == "finished_with_errors"
    assert grid.conversations[0]["errors"] == {"customers": 1, "invoices": 1}


def test_a_dropped_response_is_recovered_without_duplicates(env: Env) -> None:
    company = FakeCompany()
    for i in range(5):
        env.enqueue("customer_add", customer(i))
    dropped = env.simulator(company, faults=Faults(drop_response_after_processing=True)).run_update()
    assert company.count("Customer") == 5  # QuickBooks ran it; we never heard back
    assert {j.status for j in env.store.jobs.history(env.connector.connector_id)} == {"sent"}
    assert not dropped.ok

    # A login right after the drop is "busy" (the conversation may still be alive); after the busy window the
    # dropped conversation is closed as unsuccessful and the next run recovers.
    assert env.simulator(company).run_update().auth_result[1] == "busy"
    env.services.web_connector.limits = Limits(busy_seconds=0)
    rerun = env.simulator(company).run_update()
    assert rerun.ok, rerun.summary()
    assert company.count("Customer") == 5  # recovered from the stored response, not added again
    jobs = env.store.jobs.history(env.connector.connector_id)
    assert {j.status for j in jobs} == {"done"} and all(j.result["list_id"] for j in jobs)
    statuses = [c["status"] for c in env.refreshed().conversations]
    assert statuses[0] == "success" and "unsuccessful" in statuses


def test_a_different_company_file_is_refused(env: Env) -> None:
    env.enqueue("customer_add", customer(1))
    assert env.simulator(FakeCompany(file_path=r"C:\Company\first.qbw")).run_update().ok
    env.enqueue("customer_add", customer(2))
    other = FakeCompany(file_path=r"C:\Company\other.qbw")
    result = WebConnectorSimulator(env.url, env.connector.username, PASSWORD, other).run_update()
    assert other.count("Customer") == 0
    assert "linked to the company file" in (result.last_error or "")
    grid = env.refreshed()
    assert grid.last_status == "unsuccessful" and grid.company_file == r"C:\Company\first.qbw"


def test_unknown_ticket_gets_the_protocol_answer(env: Env) -> None:
    import requests

    from tests.qbwc import build_envelope

    body = build_envelope(
        "sendRequestXML",
        {
            "ticket": "not-a-ticket",
            "strHCPResponse": "",
            "strCompanyFileName": "x",
            "qbXMLCountry": "US",
            "qbXMLMajorVers": "13",
            "qbXMLMinorVers": "0",
        },
    )
    answer = requests.post(env.url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=10)
    assert answer.status_code == 200 and b"<sendRequestXMLResult" in answer.content
    assert b"CustomerAdd" not in answer.content


def post_soap(env: Env, body: bytes, action: str = "authenticate") -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"http://developer.intuit.com/{action}"'}
    return requests.post(env.url, data=body, headers=headers, timeout=60)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        (
            "xxe",
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            b'<authenticate xmlns="http://developer.intuit.com/"><strUserName>&e;</strUserName>'
            b"<strPassword>x</strPassword></authenticate></soap:Body></soap:Envelope>",
        ),
        (
            "entity bomb",
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
            b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]><soap:Envelope '
            b'xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><serverVersion '
            b'xmlns="http://developer.intuit.com/">&lol3;</serverVersion></soap:Body></soap:Envelope>',
        ),
        ("malformed", b"<soap:Envelope><soap:Body><authenticate>"),
        ("20 MB", b"<x>" + b"a" * (20 * 1024 * 1024) + b"</x>"),
    ],
)
def test_hostile_soap_bodies_get_a_fault_not_a_crash(env: Env, name: str, body: bytes) -> None:
    answer = post_soap(env, body)
    assert answer.status_code == 500, name
    assert answer.headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(answer.content)
    fault = root.find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault")
    assert fault is not None and fault.findtext("faultcode") == "soap:Client", name
    assert b"root:" not in answer.content and b"Traceback" not in answer.content
    assert env.refreshed().failed_logins == 0  # nothing reached the login


def test_expired_ticket_changes_nothing(env: Env) -> None:
    clock = {"now": 1_000_000.0}
    session = env.services.web_connector
    session.epoch = lambda: clock["now"]
    env.enqueue("customer_add", customer(1))
    ticket, company_file = session.authenticate("acme-qb", PASSWORD)
    assert ticket and company_file == ""
    clock["now"] += session.limits.ticket_ttl_seconds + 1
    assert session.send_request_xml(ticket, "", r"C:\x.qbw", "US", "13", "0") == ""
    assert session.get_last_error(ticket).startswith("The session is unknown or has expired")
    assert session.receive_response_xml(ticket, "<QBXML/>", "", "") == -1
    assert [j.status for j in env.store.jobs.history(env.connector.connector_id)] == ["queued"]


def test_lockout_over_soap_then_unlock(env: Env) -> None:
    company = FakeCompany()
    env.enqueue("customer_add", customer(1))
    answers = [
        WebConnectorSimulator(env.url, "acme-qb", "wrong wrong wrong", company).run_update().auth_result[1]
        for _ in range(5)
    ]
    assert answers == ["nvu"] * 5
    assert env.refreshed().locked
    assert env.simulator(company).run_update().auth_result[1] == "nvu"  # the right password no longer works
    env.services.connectors.unlock(env.tenant, env.connector.connector_id)
    assert env.simulator(company).run_update().ok
    assert company.count("Customer") == 1


def test_non_latin1_names_reach_quickbooks_in_their_documented_latin1_form(env: Env) -> None:
    company = FakeCompany()  # like QuickBooks, it refuses any character outside ISO-8859-1
    env.enqueue("customer_add", Customer(name="Zoë Łódź — “Café” 東京"))
    assert env.simulator(company).run_update().ok
    [stored] = company.customers()
    assert stored.name == 'Zoë Lódz - "Café" ??'
    [job] = env.store.jobs.history(env.connector.connector_id)
    assert job.status == "done" and job.result["name"] == stored.name


INTUIT = "{http://developer.intuit.com/}"
CAPTURES = REFERENCE / "qbwc" / "captures"


def test_every_captured_request_gets_a_well_formed_answer_from_the_route(env: Env) -> None:
    envelopes = sorted((CAPTURES / "extracted_envelopes").glob("*.request.xml"))
    raw_qbxml = sorted((CAPTURES / "qb2014").glob("*.xml"))
    if not envelopes:
        pytest.skip("the captured Web Connector traffic is not beside the repository")
    for path in envelopes:
        operation = path.name.split("_", 1)[1].split(".")[0]
        answer = post_soap(env, path.read_bytes(), operation)
        assert answer.status_code == 200, path.name
        body = etree.fromstring(answer.content)[0]  # soap:Body
        response = body[0]
        assert response.tag == f"{INTUIT}{operation}Response", path.name
        assert response[0].tag == f"{INTUIT}{operation}Result", path.name
        if operation == "authenticate":
            assert [s.tag for s in response[0]] == [f"{INTUIT}string"] * 2  # unknown user: ["", "nvu"]
            assert response[0][1].text == "nvu"
    for path in raw_qbxml:  # qbXML documents, not SOAP envelopes: a client fault, well formed
        answer = post_soap(env, path.read_bytes())
        assert answer.status_code == 500 and etree.fromstring(answer.content) is not None, path.name


def test_a_zeep_client_built_from_the_served_wsdl_calls_every_method(env: Env) -> None:
    zeep = pytest.importorskip("zeep")
    client = zeep.Client(f"{env.url}?wsdl")
    service = client.service
    assert service.serverVersion().startswith("qbsync")
    assert service.clientVersion("2.3.0.215") in ("", None)
    assert list(service.authenticate("acme-qb", "wrong password!")) == [None, "nvu"]
    env.enqueue("customer_add", customer(7))
    ticket, company = service.authenticate("acme-qb", PASSWORD)
    assert ticket and company in ("", None)
    hcp = FakeCompany().host_company_preferences_response(None, None)
    request_xml = service.sendRequestXML(ticket, hcp, r"C:\Company\fake.qbw", "US", 13, 0)
    assert "CustomerAddRq" in request_xml
    response_xml = FakeCompany().process(request_xml)
    assert service.receiveResponseXML(ticket, response_xml, "", "") == 100
    assert service.getLastError(ticket) in ("", None)
    assert service.connectionError("another-ticket", "0x80040408", "Could not start QuickBooks") == "done"
    assert service.closeConnection(ticket) == "qbsync: 1 record(s) written to QuickBooks, 0 with errors."
    assert env.refreshed().conversations[0]["status"] == "success"
    assert service.getInteractiveURL(ticket, "s1") in ("", None)
    assert service.interactiveDone(ticket) == "Done"
    assert service.interactiveRejected(ticket, "no") in ("", None)
    assert service.getServerVersion(ticket).startswith("qbsync")


def test_a_quickbooks_too_old_for_our_qbxml_is_refused_clearly(env: Env) -> None:
    env.enqueue("customer_add", customer(1))
    old = FakeCompany(supported_versions=("1.0", "2.0", "3.0", "4.0", "5.0"))
    result = env.simulator(old).run_update()
    assert old.count("Customer") == 0
    assert "qbXML" in (result.last_error or "") and "5.0" in (result.last_error or "")
    assert env.refreshed().last_status == "unsuccessful"


def test_iterator_queries_page_through_within_one_conversation(env: Env) -> None:
    from qbsync.qbwc.jobs import CustomerQuery

    company = FakeCompany()
    for i in range(250):
        env.enqueue("customer_add", customer(i))
    query = env.enqueue("customer_query", CustomerQuery(max_returned=100))
    result = env.simulator(company).run_update()
    assert result.ok, result.summary()
    job = env.store.jobs.get(env.connector.connector_id, query)
    assert job is not None and job.status == "done"
    assert (job.result["pages"], job.result["records"]) == (3, 250)
    assert result.percents[-1] == 100 and result.round_trips >= 4  # adds, then three query pages


def test_an_iterator_left_by_a_dropped_session_starts_over(env: Env) -> None:
    from qbsync.qbwc.jobs import CustomerQuery

    company = FakeCompany()
    for i in range(150):
        env.enqueue("customer_add", customer(i))
    assert env.simulator(company).run_update().ok
    query = env.enqueue("customer_query", CustomerQuery(max_returned=100))
    session = env.services.web_connector
    ticket, _ = session.authenticate("acme-qb", PASSWORD)
    hcp = company.host_company_preferences_response(env.connector.owner_id, env.connector.file_id)
    first_page = session.send_request_xml(ticket, hcp, company.file_path, "US", "13", "0")
    assert session.receive_response_xml(ticket, company.process(first_page), "", "") < 100
    company.end_session()  # the Web Connector stops here; QuickBooks forgets the iterator
    session.limits = Limits(busy_seconds=0)
    assert env.simulator(company).run_update().ok
    job = env.store.jobs.get(env.connector.connector_id, query)
    assert job is not None and job.status == "done" and (job.result["pages"], job.result["records"]) == (2, 150)
