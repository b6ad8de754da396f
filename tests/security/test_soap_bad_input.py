"""Hostile or broken Web Connector requests through the real /qbwc route: each gets a SOAP 1.1 fault (``soap:Client``
with a clear faultstring, never a stack trace) and changes nothing — no login counted, no ticket opened, no job
touched, nothing queued or emitted. The parser's own cases are in tests/qbwc/test_soap.py and
tests/qbxml/test_hostile_xml.py; this suite checks the outcome through the whole app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from qbsync.api.services import use_services
from qbsync.qbwc.protocol import INTUIT_NS, SOAP11_ENV_NS
from tests.qbwc import fault_of
from tests.world import Tenant, World, build_world

USER, PASSWORD = "soap-victim", "soap victim password"
HEAD = f'<soap:Envelope xmlns:soap="{SOAP11_ENV_NS}"><soap:Body>'
TAIL = "</soap:Body></soap:Envelope>"


def authenticate(user: str = USER, password: str = PASSWORD, *, extra: str = "") -> str:
    return (
        f'{HEAD}<authenticate xmlns="{INTUIT_NS}"><strUserName>{user}</strUserName>'
        f"<strPassword>{password}</strPassword>{extra}</authenticate>{TAIL}"
    )


CASES: dict[str, tuple[bytes, str]] = {
    "XXE": (
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + authenticate(user="&e;")
        ).encode(),
        "DOCTYPE",
    ),
    "entity bomb": (
        (
            '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
            + authenticate(user="&d;")
        ).encode(),
        "DOCTYPE",
    ),
    "external DTD": (
        ('<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd">' + authenticate()).encode(),
        "DOCTYPE",
    ),
    "20 MB body": (
        (HEAD + f'<receiveResponseXML xmlns="{INTUIT_NS}"><ticket>t</ticket><response>').encode()
        + b"A" * (20 * 1024 * 1024)
        + f"</response></receiveResponseXML>{TAIL}".encode(),
        "bytes",
    ),
    "garbage bytes": (b"\x00\x01\x02\xff\xfe garbage", "malformed"),
    "not XML at all": (b"GET / HTTP/1.1", "malformed"),
    "truncated envelope": (authenticate().encode()[:-40], "malformed"),
    "declared UTF-16, sent UTF-8": (('<?xml version="1.0" encoding="UTF-16"?>' + authenticate()).encode(), ""),
    "invalid UTF-8": (authenticate(user="caf\udce9").encode("utf-8", "surrogateescape"), ""),
    "unknown operation": (f'{HEAD}<dropTables xmlns="{INTUIT_NS}"/>{TAIL}'.encode(), "dropTables"),
    "wrong namespace": (authenticate().replace(INTUIT_NS, "http://evil.example/").encode(), "namespace"),
    "element where text belongs": (authenticate(user="<x>y</x>").encode(), ""),
    "a parameter twice": (authenticate(extra=f"<strPassword>{PASSWORD}</strPassword>").encode(), ""),
    "SOAP 1.2": (
        authenticate().replace(SOAP11_ENV_NS, "http://www.w3.org/2003/05/soap-envelope").encode(),
        "SOAP 1.2",
    ),
}


@dataclass
class Scene:
    world: World
    tenant: Tenant
    connector_id: str


@pytest.fixture(scope="module")
def scene() -> Iterator[Scene]:
    with pytest.MonkeyPatch.context() as monkeypatch, build_world(monkeypatch) as world:
        tenant = world.tenant("Soap Victim")
        created = world.ok(
            "POST",
            "/v1/connectors",
            key=tenant.api_key,
            json_body={"name": "V", "username": USER, "password": PASSWORD},
        )
        world.services.jobs.enqueue(tenant.tenant_id, created["connector_id"], "customer_query", {})
        yield Scene(world, tenant, created["connector_id"])


@pytest.fixture(autouse=True)
def _scene_services(scene: Scene) -> None:
    use_services(scene.world.services)


def snapshot(scene: Scene) -> dict[str, Any]:
    world = scene.world
    grid = world.ok("GET", f"/v1/connectors/{scene.connector_id}", key=scene.tenant.api_key)
    return {
        "grid": {k: grid[k] for k in ("failed_logins", "locked", "last_login_failure", "conversations", "last_status")},
        "jobs": [(j.seq, j.status, j.attempts) for j in world.store.jobs.history(scene.connector_id, limit=100)],
        "tickets": len(world.store._tables.tickets),  # type: ignore[attr-defined]
        "queued": len(world.queue.sent),
        "events": len(world.events.events),
    }


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_soap_request_gets_a_fault_and_changes_nothing(scene: Scene, name: str) -> None:
    body, fragment = CASES[name]
    before = snapshot(scene)
    answer = scene.world.soap("authenticate", raw=body)
    raw = answer.body if isinstance(answer.body, bytes) else str(answer.body).encode()
    assert answer.status_code == 500 and answer.headers["Content-Type"].startswith("text/xml"), raw[:300]
    code, text = fault_of(raw)
    assert code.endswith("Client"), (code, text)
    assert fragment.lower() in text.lower(), text
    assert "Traceback" not in text and "root:" not in text and len(raw) < 4000
    assert snapshot(scene) == before


def test_a_soap_action_naming_another_operation_does_not_change_what_runs(scene: Scene) -> None:
    """The body decides (as the Web Connector's own server samples do); the header cannot smuggle a call."""
    world = scene.world
    before = snapshot(scene)
    answer = world.api.request(
        "POST",
        "/qbwc",
        body=authenticate(password="wrong password here").encode(),
        headers={"Content-Type": "text/xml", "SOAPAction": '"http://developer.intuit.com/closeConnection"'},
    )
    assert answer.status_code == 200 and b"authenticateResult" in answer.body and b"nvu" in answer.body
    after = snapshot(scene)
    assert after["grid"]["failed_logins"] == before["grid"]["failed_logins"] + 1  # a real (wrong) login, counted
    assert after["tickets"] == before["tickets"] and after["jobs"] == before["jobs"]
    world.ok("POST", f"/v1/connectors/{scene.connector_id}/unlock", key=scene.tenant.api_key)
