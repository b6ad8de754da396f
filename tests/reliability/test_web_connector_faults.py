"""Web Connector faults, end to end: records posted over REST, the worker queueing connector jobs, the Web
Connector simulator (or hand-made SOAP calls) against the app, the fake company file processing the qbXML. Each
case ends with the audit: the company file holds exactly one customer, item and invoice per record, and every
record says ``synced`` with its own QuickBooks id.

Lost responses recovered by the message-set id and stuck writes found again by a query are covered in
tests/qbwc/test_conversation.py and tests/qbwc/test_stuck_jobs.py; this suite adds two Web Connectors at once,
a ticket reused after closeConnection, connectionError and hresult paths, and corrupted qbXML responses."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from infra.fake_qbd import FakeCompany
from infra.wc_sim import Faults, UpdateResult
from tests.world import Tenant, World

USER, PASSWORD = "faulty-desk", "faulty desk password"
CUSTOMERS = [{"id": f"c{i}", "name": f"Desk Customer {i}", "email": f"d{i}@example.com"} for i in range(4)]
ITEMS = [{"id": "svc", "name": "Desk Work", "sku": "DW", "price": "30.00"}]
INVOICES = [
    {
        "id": f"inv{i}",
        "customer_id": f"c{i % 4}",
        "date": "2026-11-06",
        "doc_number": f"W-{i}",
        "lines": [{"item_id": "svc", "quantity": "1", "rate": "30.00"}],
    }
    for i in range(3)
]
RECORDS = {"customers": CUSTOMERS, "items": ITEMS, "invoices": INVOICES}


def send(world: World, ticket: str, company: FakeCompany) -> str:
    """sendRequestXML as the Web Connector sends it (the company's HCP response, its file, qbXML 13.0)."""
    params: dict[str, str | None] = {
        "ticket": ticket,
        "strHCPResponse": company.host_company_preferences_response(None, None),
        "strCompanyFileName": company.file_path,
        "qbXMLCountry": "US",
        "qbXMLMajorVers": "13",
        "qbXMLMinorVers": "0",
    }
    return world.soap_result("sendRequestXML", params)[0]


@pytest.fixture
def desk(world: World) -> Tenant:
    tenant = world.tenant("Desk Faults", auto_create_customers=True, auto_create_items=True, income_account="Sales")
    world.ok(
        "POST", "/v1/connectors", key=tenant.api_key, json_body={"name": "D", "username": USER, "password": PASSWORD}
    )
    for kind, body in RECORDS.items():
        world.ok("POST", f"/v1/{kind}", key=tenant.api_key, json_body=body)
    world.drain()
    return tenant


def states(world: World, tenant: Tenant) -> dict[str, dict[str, Any]]:
    return {
        f"{kind}/{r['id']}": world.ok("GET", f"/v1/{kind}/{r['id']}", key=tenant.api_key)
        for kind, body in RECORDS.items()
        for r in body
    }


def settle(world: World, tenant: Tenant, company: FakeCompany, runs: int = 8) -> None:
    """Normal runs until everything is synced. Time is taken to have passed: a conversation left open by a fault
    no longer keeps the connector busy (the 90-second window the Web Connector's next run would wait out)."""
    service = world.services.web_connector
    service.limits = replace(service.limits, busy_seconds=0)
    for _ in range(runs):
        world.drain(redeliver=True)
        if all(v["state"] == "synced" for v in states(world, tenant).values()):
            return
        result = world.web_connector(USER, PASSWORD, company)
        assert result.ok or result.auth_result[1:] == ["busy"], result.summary()
    world.drain(redeliver=True)


def audit(world: World, tenant: Tenant, company: FakeCompany) -> None:
    views = states(world, tenant)
    assert {k: (v["state"], v["reason"]) for k, v in views.items() if v["state"] != "synced"} == {}
    for kind in RECORDS:
        ids = Counter(v["quickbooks_id"] for k, v in views.items() if k.startswith(kind))
        assert all(n == 1 for n in ids.values()), (kind, ids)
    assert company.count("Customer") == len(CUSTOMERS)
    assert len(company.items()) == len(ITEMS)
    assert company.count("Invoice") == len(INVOICES)
    assert sorted(inv.ref_number for inv in company.invoices()) == sorted(i["doc_number"] for i in INVOICES)


def first_run(world: World, company: FakeCompany) -> None:
    """The connector's first conversation reads the company's lists; the worker then queues the writes."""
    assert world.web_connector(USER, PASSWORD, company).ok
    world.drain(redeliver=True)


def authenticate(world: World) -> list[str]:
    return world.soap_result("authenticate", {"strUserName": USER, "strPassword": PASSWORD})


@pytest.mark.parametrize(
    "faults",
    [
        Faults(drop_response_after_processing=True),
        Faults(drop_response_after_processing=True, drop_on_round=2),
        Faults(hresult_parse_error=True),
        Faults(connection_error=1),
        Faults(connection_error=5),  # QuickBooks never opens in this run: connectionError until the server says done
    ],
    ids=["response dropped", "second response dropped", "hresult", "connectionError then open", "cannot open"],
)
def test_a_faulty_conversation_then_normal_runs_write_everything_exactly_once(
    world: World, desk: Tenant, faults: Faults
) -> None:
    company = FakeCompany()
    first_run(world, company)
    result = world.web_connector(USER, PASSWORD, company, faults=faults)
    if faults.connection_error > 2:
        assert result.connection_errors and not result.ok
    settle(world, desk, company)
    audit(world, desk, company)


def test_two_web_connectors_on_one_connector_at_once_the_second_is_told_busy(world: World, desk: Tenant) -> None:
    """Two PCs with the same .qwc run at the same moment: one conversation at a time, nothing sent twice."""
    company = FakeCompany()
    first_run(world, company)
    ticket, _ = authenticate(world)
    assert ticket
    assert authenticate(world) == ["", "busy"]  # the second machine, while the first conversation is open
    request = send(world, ticket, company)
    assert "CustomerAdd" in request
    world.soap_result("receiveResponseXML", {"ticket": ticket, "response": company.process(request), "hresult": None,
                                             "message": None})  # fmt: skip
    world.soap_result("closeConnection", {"ticket": ticket})
    # Now both at once, for real: two simulators started together on two threads.
    other = FakeCompany()
    results: list[UpdateResult] = []
    start = threading.Barrier(2)

    def run(target: FakeCompany) -> None:
        start.wait(timeout=10)
        results.append(world.web_connector(USER, PASSWORD, target, faults=Faults(slow_seconds=0.05)))

    world.drain(redeliver=True)
    threads = [threading.Thread(target=run, args=(c,)) for c in (company, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 2
    verdicts = sorted(r.auth_result[1] if len(r.auth_result) > 1 else "?" for r in results)
    assert "busy" in verdicts or any(r.round_trips == 0 for r in results), [r.summary() for r in results]
    moved = other.count("Customer") + other.count("Invoice") + len(other.items())
    settle(world, desk, company if moved == 0 else other)
    if moved == 0:
        audit(world, desk, company)
    else:  # the other PC won the race: then it got everything queued since, and nothing went to both
        assert company.count("Invoice") + other.count("Invoice") == len(INVOICES)


def test_a_ticket_is_dead_after_close_connection(world: World, desk: Tenant) -> None:
    company = FakeCompany()
    first_run(world, company)
    ticket, _ = authenticate(world)
    request = send(world, ticket, company)
    world.soap_result("receiveResponseXML", {"ticket": ticket, "response": company.process(request), "hresult": None,
                                             "message": None})  # fmt: skip
    world.soap_result("closeConnection", {"ticket": ticket})
    world.drain(redeliver=True)
    world.ok("POST", "/v1/customers", key=desk.api_key, json_body={"id": "c-late", "name": "Late Desk Customer"})
    world.drain(redeliver=True)  # a new write is queued after the conversation closed
    queued = [j for j in world.store.jobs.history(_connector_id(world, desk), limit=500) if j.status == "queued"]
    assert queued, "nothing queued after the first writes"
    assert send(world, ticket, company) == ""
    assert int(world.soap_result("receiveResponseXML", {"ticket": ticket, "response": request, "hresult": None,
                                                        "message": None})[0]) < 0  # fmt: skip
    assert "unknown or has expired" in world.soap_result("getLastError", {"ticket": ticket})[0]
    after = {j.seq: j.status for j in world.store.jobs.history(_connector_id(world, desk), limit=500)}
    assert all(after[j.seq] == "queued" for j in queued)
    settle(world, desk, company)
    audit(world, desk, company)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda xml: xml[: len(xml) // 2],  # truncated on the way
        lambda xml: "garbage<<" + xml,
        lambda xml: xml.replace('requestID="', 'requestID="9'),  # answers to requests never sent
        lambda xml: xml.replace("<CustomerRet>", "<CustomerRet><Unheard>x</Unheard>", 1).replace(
            'statusSeverity="Info"', 'statusSeverity="Mystery"', 1
        ),
    ],
    ids=["truncated", "garbage bytes", "mismatched requestIDs", "unknown elements and enum"],
)
def test_a_corrupted_qbxml_response_marks_nothing_done_wrongly_and_the_next_run_recovers(
    world: World, desk: Tenant, corrupt: Any
) -> None:
    """QuickBooks ran the requests; what reached qbsync was damaged. No job may be marked done on a guess, and
    the next conversation must recover (message-set recovery or a query) without writing anything twice."""
    company = FakeCompany()
    first_run(world, company)
    ticket, _ = authenticate(world)
    request = send(world, ticket, company)
    response = company.process(request)  # QuickBooks did the work…
    answer = world.soap_result("receiveResponseXML", {"ticket": ticket, "response": corrupt(response),
                                                      "hresult": None, "message": None})  # fmt: skip
    assert answer[0].lstrip("-").isdigit()
    world.soap_result("closeConnection", {"ticket": ticket})
    jobs = world.store.jobs.history(_connector_id(world, desk), limit=500)
    done = [j for j in jobs if j.status == "done" and j.kind.endswith(("_add", "_mod"))]
    for job in done:  # whatever write was accepted carries QuickBooks' real id for that request
        assert job.result.get("list_id") or job.result.get("txn_id"), job
    settle(world, desk, company)
    audit(world, desk, company)


def _connector_id(world: World, tenant: Tenant) -> str:
    [connector] = world.ok("GET", "/v1/connectors", key=tenant.api_key)["items"]
    return str(connector["connector_id"])


@pytest.mark.parametrize("sent_first", [False, True], ids=["changed while queued", "changed while in flight"])
def test_a_record_changed_while_its_add_waits_for_the_web_connector_is_updated_not_added_twice(
    world: World, desk: Tenant, sent_first: bool
) -> None:
    """A customer and an invoice change after their Add jobs were queued (or already sent, the answer not yet
    back): the new content waits for the Add, then goes as a Mod of what it created. The company file ends with
    one customer and one invoice per record, carrying the new content (was: a second invoice, and the customer
    blocked by QuickBooks' 3100 duplicate name)."""
    company = FakeCompany()
    first_run(world, company)  # the lists are read; the first writes are queued now
    settle(world, desk, company)
    customer = {**CUSTOMERS[0], "id": "c-new", "name": "Changing Customer", "email": "changing@example.com"}
    invoice = {**INVOICES[0], "id": "inv-new", "customer_id": "c0", "doc_number": "W-NEW"}
    world.ok("POST", "/v1/customers", key=desk.api_key, json_body={**customer, "phone": "555-0001"})
    world.ok("POST", "/v1/invoices", key=desk.api_key, json_body=invoice)
    world.drain(redeliver=True)
    ticket = ""
    if sent_first:  # the Add jobs are in QuickBooks' hands when the change arrives
        ticket, _ = authenticate(world)
        request = send(world, ticket, company)
        assert "Changing Customer" in request and "W-NEW" in request
        response = company.process(request)
    world.ok("POST", "/v1/customers", key=desk.api_key, json_body={**customer, "phone": "555-0002"})
    world.ok("POST", "/v1/invoices", key=desk.api_key, json_body={**invoice, "memo": "second version"})
    world.drain(redeliver=True)
    if sent_first:
        world.soap_result("receiveResponseXML", {"ticket": ticket, "response": response, "hresult": None,
                                                 "message": None})  # fmt: skip
        world.soap_result("closeConnection", {"ticket": ticket})
    for _ in range(6):
        world.drain(redeliver=True)
        views = [world.ok("GET", path, key=desk.api_key) for path in ("/v1/customers/c-new", "/v1/invoices/inv-new")]
        if all(v["state"] == "synced" for v in views):
            break
        world.web_connector(USER, PASSWORD, company)
    assert [v["state"] for v in views] == ["synced", "synced"], views
    changing = [c for c in company.customers() if c.name == "Changing Customer"]
    assert len(changing) == 1 and changing[0].field_text("Phone") == "555-0002"
    new_invoices = [i for i in company.invoices() if i.ref_number == "W-NEW"]
    assert len(new_invoices) == 1 and new_invoices[0].memo == "second version"
    assert views[0]["quickbooks_id"] == changing[0].list_id and views[1]["quickbooks_id"] == new_invoices[0].txn_id
