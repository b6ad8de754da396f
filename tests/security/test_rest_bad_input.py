"""Bad input on the data routes: every case gets a typed problem+json (a stable ``code``, the failing field named)
and changes nothing — no record stored, no transfer logged, nothing queued, no event. Two tenants: one connected
to QuickBooks Online, one with a Web Connector connector (whose records are also checked against what QuickBooks
Desktop can hold before anything is stored).

Decisions this suite pins down:

* an invoice has at most 500 lines (10,000 are refused with the limit named, not split: one source invoice must
  stay one QuickBooks invoice; QuickBooks Desktop's own practical limit is far lower);
* amounts have at most 2 decimals and 13 integer digits; NaN, Infinity and a bare ``NaN`` token are refused;
  payments, applications, discounts and tax are positive (tax may be 0); a line may be negative (a credit line,
  as QuickBooks allows) but the invoice may not;
* for a Desktop tenant a customer name over 41 characters, a reference number over 11, and a name or SKU with
  characters ISO-8859-1 cannot hold (which QuickBooks Desktop would store as ``?``) are refused at once; the same
  text is fine for QuickBooks Online (Unicode), and free text (memos, descriptions) keeps the documented Latin-1
  rule rather than being refused;
* one id twice in one list is refused (which of the two would win is not the caller's intent).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from qbsync.api.services import use_services
from tests.world import Tenant, World, build_world


@dataclass
class Scene:
    world: World
    qbo: Tenant
    desk: Tenant


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    with pytest.MonkeyPatch.context() as monkeypatch, build_world(monkeypatch) as world:
        qbo = world.tenant("Online Co", auto_create_customers=True, auto_create_items=True, income_account="Services")
        world.connect_qbo(qbo, "Online Books")
        desk = world.tenant("Desk Co", auto_create_customers=True, auto_create_items=True, income_account="Services")
        world.ok(
            "POST",
            "/v1/connectors",
            key=desk.api_key,
            json_body={"name": "Desk", "username": "desk-co", "password": "desk co password"},
        )
        yield Scene(world, qbo, desk)


@pytest.fixture(autouse=True)
def _scene_services(scene: Scene) -> None:
    use_services(scene.world.services)


def customer(**extra: Any) -> dict[str, Any]:
    return {"id": "c-1", "name": "Customer One", "email": "one@example.com", **extra}


def item(**extra: Any) -> dict[str, Any]:
    return {"id": "i-1", "name": "Support", "sku": "SUP", "price": "40.00", **extra}


def invoice(**extra: Any) -> dict[str, Any]:
    return {
        "id": "inv-1",
        "customer_id": "c-1",
        "date": "2026-11-01",
        "lines": [{"item_id": "i-1", "quantity": "2", "rate": "40.00"}],
        **extra,
    }


def line(**extra: Any) -> dict[str, Any]:
    return invoice(lines=[{"item_id": "i-1", "quantity": "1", "rate": "40.00", **extra}])


def payment(amount: Any = "80.00", applied: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "p-1",
        "customer_id": "c-1",
        "date": "2026-11-02",
        "amount": amount,
        "applied_to": [{"invoice_id": "inv-1", "amount": amount if applied is None else applied}],
        **extra,
    }


@dataclass(frozen=True)
class Bad:
    route: str
    body: Any  # JSON-encoded, unless bytes (sent as they are)
    status: int
    code: str
    field: str | None = None  # a field the problem must name (errors[].field)
    tenant: str = "qbo"
    content_type: str = "application/json"
    says: str | None = None  # a fragment the message must contain


CASES: dict[str, Bad] = {
    # malformed bodies
    "truncated JSON": Bad("customers", b'{"id": "c-1", "name": ', 400, "malformed_json"),
    "not UTF-8": Bad("customers", b'{"id": "c-1", "name": "\xff\xfe"}', 400, "malformed_json"),
    "bare NaN token": Bad("payments", b'{"id": "p", "amount": NaN}', 400, "malformed_json"),
    "empty body": Bad("items", b"", 400, "malformed_json"),
    "form-encoded": Bad("items", b"id=i-1&name=x", 415, "unsupported_media_type", content_type="text/plain"),
    "a JSON string": Bad("items", "just text", 422, "validation_error"),
    "an empty list": Bad("items", [], 422, "validation_error", "body"),
    "501 records": Bad("items", [item(id=f"i{n}") for n in range(501)], 422, "validation_error", "body", says="500"),
    # wrong types, unknown fields
    "name is a number": Bad("customers", customer(name=123), 422, "validation_error", "name"),
    "tax_exempt is a string": Bad("customers", customer(tax_exempt="yes"), 422, "validation_error", "tax_exempt"),
    "lines is an object": Bad("invoices", invoice(lines={"item_id": "i-1"}), 422, "validation_error", "lines"),
    "price is a boolean": Bad("items", item(price=True), 422, "validation_error", "price"),
    "date is not a date": Bad("invoices", invoice(date="2026-02-30"), 422, "validation_error", "date"),
    "unknown field": Bad("customers", customer(colour="red"), 422, "validation_error", "colour"),
    "unknown nested field": Bad("invoices", line(colour="red"), 422, "validation_error", "lines.0.colour"),
    "id with a control character": Bad("customers", customer(id="c\x01"), 422, "validation_error", "id"),
    "name with a control character": Bad("customers", customer(name="A\x07B"), 422, "validation_error", "name"),
    # amounts
    "negative payment": Bad("payments", payment("-80.00"), 422, "validation_error", "amount"),
    "zero payment": Bad("payments", payment("0"), 422, "validation_error", "amount"),
    "negative application": Bad("payments", payment("80.00", "-80.00"), 422, "validation_error", "applied_to.0.amount"),
    "negative invoice": Bad("invoices", line(rate="-40.00"), 422, "validation_error", "body", says="negative"),
    "negative discount": Bad("invoices", invoice(discount={"amount": "-5.00"}), 422, "validation_error", "discount"),
    "negative tax": Bad("invoices", invoice(tax_amount="-1.00"), 422, "validation_error", "tax_amount"),
    "NaN amount": Bad("payments", payment("NaN"), 422, "validation_error", "amount"),
    "Infinity rate": Bad("invoices", line(rate="Infinity"), 422, "validation_error", "lines.0.rate"),
    "-Infinity price": Bad("items", item(price="-Infinity"), 422, "validation_error", "price"),
    "NaN quantity": Bad("invoices", line(quantity="NaN"), 422, "validation_error", "lines.0.quantity"),
    "huge payment": Bad("payments", payment("99999999999999999"), 422, "validation_error", "amount"),
    "huge rate": Bad("invoices", line(rate="1e20"), 422, "validation_error", "lines.0.rate"),
    "huge float": Bad("invoices", line(rate=1e308), 422, "validation_error", "lines.0.rate"),
    "huge quantity x rate": Bad(
        "invoices", line(quantity="999999999", rate="999999999"), 422, "validation_error", "lines.0", says="below"
    ),
    "3 decimals in a payment": Bad("payments", payment("10.005"), 422, "validation_error", "amount"),
    "3 decimals in a line amount": Bad("invoices", line(amount="40.001"), 422, "validation_error", "lines.0.amount"),
    "3 decimals in a total": Bad("invoices", invoice(total="80.001"), 422, "validation_error", "total"),
    "a total that does not add up": Bad("invoices", invoice(total="81.00"), 422, "validation_error", "body"),
    "applications that do not add up": Bad("payments", payment("80.00", "70.00"), 422, "validation_error", "body"),
    "10,000 lines": Bad(
        "invoices",
        invoice(lines=[{"item_id": "i-1", "rate": "1.00"}] * 10_000),
        422,
        "validation_error",
        "lines",
        says="500",
    ),
    # names and QuickBooks limits
    "a name over 100 characters": Bad("customers", customer(name="N" * 101), 422, "validation_error", "name"),
    "a doc number over 21": Bad("invoices", invoice(doc_number="D" * 22), 422, "validation_error", "doc_number"),
    "Desktop: a customer name over 41": Bad(
        "customers", customer(name="N" * 42), 422, "validation_error", "name", tenant="desk", says="41"
    ),
    "Desktop: a doc number over 11": Bad(
        "invoices", invoice(doc_number="INV-00000001"), 422, "validation_error", "doc_number", tenant="desk", says="11"
    ),
    "Desktop: a reference over 20": Bad(
        "payments", payment(reference="R" * 20 + "ü"), 422, "validation_error", "reference", tenant="desk"
    ),
    "Desktop: a name with ':'": Bad(
        "customers", customer(name="Parent:Child"), 422, "validation_error", "name", tenant="desk"
    ),
    "Desktop: a Greek name": Bad(
        "customers", customer(name="Ωμέγα Ltd"), 422, "validation_error", "name", tenant="desk", says="ISO-8859-1"
    ),
    "Desktop: a Japanese item name": Bad(
        "items", item(name="東京 support"), 422, "validation_error", "name", tenant="desk"
    ),
    "Desktop: a Cyrillic SKU": Bad(
        "items", item(sku="\u0421\u041a\u0423-1"), 422, "validation_error", "sku", tenant="desk"
    ),
    "Desktop: one bad record in a list": Bad(
        "customers", [customer(), customer(id="c-2", name="Ωμέγα")], 422, "validation_error", "1.name", tenant="desk"
    ),
    # duplicate ids within one request
    "the same id twice": Bad("customers", [customer(), customer(name="Other")], 422, "validation_error", "1.id"),
    "the same invoice applied twice": Bad(
        "payments",
        {**payment("80.00"), "applied_to": [{"invoice_id": "inv-1", "amount": "40.00"}] * 2},
        422,
        "validation_error",
        "body",
    ),
}


def snapshot(scene: Scene) -> dict[str, Any]:
    world = scene.world
    state: dict[str, Any] = {"queued": len(world.queue.sent), "events": len(world.events.events)}
    for tenant in (scene.qbo, scene.desk):
        for kind in ("customers", "items", "invoices", "payments"):
            state[f"{tenant.tenant_id}:{kind}"] = len(world.store.records.list(tenant.tenant_id, kind).items)
        state[f"{tenant.tenant_id}:transfers"] = len(world.store.records.history(tenant.tenant_id, limit=10).items)
    return state


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_with_a_typed_problem_and_changes_nothing(scene: Scene, name: str) -> None:
    case = CASES[name]
    world = scene.world
    tenant = scene.qbo if case.tenant == "qbo" else scene.desk
    before = snapshot(scene)
    body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    answer = world.call(
        "POST", f"/v1/{case.route}", key=tenant.api_key, body=body, headers={"Content-Type": case.content_type}
    )
    assert answer.status_code == case.status, answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    problem = json.loads(answer.body)
    assert problem["code"] == case.code and problem["status"] == case.status and problem["title"]
    if case.field is not None:
        fields = [e["field"] for e in problem["errors"]]
        assert any(f == case.field or f.startswith(case.field + ".") for f in fields), (case.field, problem)
    if case.says is not None:
        assert case.says in json.dumps(problem), problem
    assert snapshot(scene) == before, "a refused request stored, logged, queued or emitted something"


def test_the_same_unicode_names_are_fine_for_quickbooks_online_and_land_verbatim(scene: Scene) -> None:
    """The Desktop refusals above are about Desktop: QuickBooks Online stores Unicode as it is."""
    world = scene.world
    world.ok(
        "POST",
        "/v1/customers",
        key=scene.qbo.api_key,
        json_body=[{"id": "u-1", "name": "Ωμέγα Ltd", "email": "omega@example.com"}, {"id": "u-2", "name": "東京 KK"}],
    )
    world.drain()
    for source_id in ("u-1", "u-2"):
        assert world.ok("GET", f"/v1/customers/{source_id}", key=scene.qbo.api_key)["state"] == "synced"
    names = {c["DisplayName"] for c in world.emulator.company(world.emulator.realms[0]).entities["Customer"].values()}
    assert {"Ωμέγα Ltd", "東京 KK"} <= names


def test_desktop_free_text_keeps_the_latin1_rule_and_a_fixed_record_is_accepted(scene: Scene) -> None:
    """A memo is not an identity: characters with no Latin-1 form become '?' there, the record is accepted."""
    world = scene.world
    answer = world.ok(
        "POST",
        "/v1/customers",
        key=scene.desk.api_key,
        json_body={"id": "d-1", "name": "Zoë Łódź", "email": "zoe@example.com", "notes": "☕ every Monday"},
    )
    assert answer["transfers"][0]["status"] == "queued"
