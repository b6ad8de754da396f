"""``qbsync smoke``: prove a stack works end to end over HTTP, the way its users reach it.

Against ``--url`` with the admin key it checks, in order: the API answers; a tenant can be created and its key
works (a wrong key is refused with problem+json); a connector can be created and its ``.qwc`` names this stack's
``/qbwc`` (https unless on loopback); the Web Connector handshake (``serverVersion``, ``authenticate`` with the
connector's credentials, ``closeConnection``) succeeds at that AppURL; a record is stored and queued (table, queue
and their permissions); QuickBooks Online hands out an authorization URL whose redirect is this stack's
``/qbo/callback`` (skipped when QuickBooks Online is not configured). The smoke tenant is deactivated at the end.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from qbsync.qbxml.errors import QbxmlParseError
from qbsync.qbxml.safexml import parse_xml

if TYPE_CHECKING:
    from qbsync.cli import Client

INTUIT_NS = "http://developer.intuit.com/"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str


class _Failed(Exception):
    pass


def same_endpoint(url: str, expected: str) -> bool:
    """Same scheme, host, port and path; on loopback ``localhost`` and ``127.0.0.1`` are the same host (the .qwc
    names ``localhost`` because the Web Connector refuses IP addresses)."""
    got, want = urlsplit(url), urlsplit(expected)
    hosts = {got.hostname, want.hostname}
    same_host = got.hostname == want.hostname or hosts <= _LOOPBACK
    return (got.scheme, got.port, got.path.rstrip("/")) == (want.scheme, want.port, want.path.rstrip("/")) and same_host


def soap_envelope(operation: str, params: dict[str, str]) -> bytes:
    body = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in params.items())
    return (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soap:Body><{operation} xmlns="{INTUIT_NS}">{body}</{operation}></soap:Body></soap:Envelope>'
    ).encode()


class Smoke:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.url = client.url
        self.loopback = (urlsplit(self.url).hostname or "") in _LOOPBACK
        self.checks: list[Check] = []
        self.key: str | None = None
        self.tenant_id: str | None = None
        self.qbd: dict[str, str] = {}
        self.app_url: str | None = None

    def check(self, name: str, ok: bool | None, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))
        if ok is False:
            raise _Failed(name)

    def expect(self, response: Any, status: int, what: str) -> Any:
        if response.status_code != status:
            raise _Failed(f"{what}: HTTP {response.status_code} (expected {status}): {response.text[:300]}")
        return response.json() if "json" in response.headers.get("Content-Type", "") else response.text

    # -- the checks ----------------------------------------------------------------------------------------------

    def api(self) -> None:
        health = self.expect(self.client.request("GET", "/health"), 200, "GET /health")
        self.check("health", health.get("status") == "ok", f"version {health.get('version')}, {health.get('stage')}")
        spec = self.expect(self.client.request("GET", "/openapi.json"), 200, "GET /openapi.json")
        self.check("openapi", "/v1/tenants" in spec.get("paths", {}), f"{len(spec.get('paths', {}))} paths")

    def tenant(self) -> None:
        if not self.client.admin_key:
            raise _Failed("the smoke test needs the admin key: pass --admin-key / QBSYNC_ADMIN_KEY")
        name = f"qbsync smoke {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())}"
        created = self.expect(
            self.client.request("POST", "/v1/tenants", key=self.client.admin_key, body={"name": name}),
            201,
            "POST /v1/tenants",
        )
        self.key, self.tenant_id = created["api_key"], created["tenant_id"]
        me = self.expect(self.client.request("GET", "/v1/tenant", key=self.key), 200, "GET /v1/tenant")
        self.check("tenant", me.get("tenant_id") == self.tenant_id, f"{self.tenant_id} ({name})")
        wrong = self.client.request("GET", "/v1/tenant", key=self.key + "x")
        refused = wrong.status_code == 401 and wrong.headers.get("Content-Type") == "application/problem+json"
        self.check("wrong key refused", refused, f"HTTP {wrong.status_code} {wrong.headers.get('Content-Type')}")

    def connector(self) -> None:
        username = f"smoke-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(18)
        body = {"name": "Smoke test", "username": username, "password": password}
        created = self.expect(
            self.client.request("POST", "/v1/connectors", key=self.key, body=body), 201, "POST /v1/connectors"
        )
        self.qbd = {"id": created["connector_id"], "username": username, "password": password}
        qwc = self.expect(self.client.request("GET", f"/v1/connectors/{self.qbd['id']}/qwc", key=self.key), 200, ".qwc")
        try:
            self.app_url = parse_xml(qwc).findtext("AppURL")
        except QbxmlParseError as exc:
            raise _Failed(f".qwc is not XML: {exc}") from None
        expected = self.url + "/qbwc"
        ok = same_endpoint(self.app_url or "", expected) and (self.loopback or expected.startswith("https://"))
        self.check("qwc AppURL", ok, f"{self.app_url} (expected {expected}, https unless loopback)")

    def web_connector(self) -> None:
        assert self.app_url is not None
        version = self._soap("serverVersion", {})
        self.check("qbwc serverVersion", version is not None, f"{version}")
        credentials = {"strUserName": self.qbd["username"], "strPassword": self.qbd["password"]}
        refused = self._soap_strings("authenticate", {**credentials, "strPassword": "not-the-password"})
        self.check("qbwc wrong password refused", refused[1:2] == ["nvu"], f"answer {refused[1:2]}")
        strings = self._soap_strings("authenticate", credentials)
        # Accepted: a ticket (work waiting) or "none" (nothing to do yet: the Web Connector just closes).
        ok = len(strings) >= 2 and strings[1] != "nvu" and (bool(strings[0]) or strings[1] == "none")
        self.check("qbwc authenticate", ok, f"answer {strings[1:2]} (nvu = refused)")
        if strings[0]:
            closed = self._soap("closeConnection", {"ticket": strings[0]})
            self.check("qbwc closeConnection", closed is not None, f"{closed}")

    def records(self) -> None:
        customer = {"id": "smoke-c-1", "name": "Smoke Test Customer", "email": "smoke@example.invalid"}
        self.expect(self.client.request("POST", "/v1/customers", key=self.key, body=[customer]), 202, "POST customers")
        stored = self.expect(
            self.client.request("GET", "/v1/customers/smoke-c-1", key=self.key), 200, "GET /v1/customers/{id}"
        )
        ok = stored.get("id") == "smoke-c-1" and bool(stored.get("state"))
        self.check("record stored and queued", ok, f"state {stored.get('state')}, target {stored.get('target')}")

    def qbo(self) -> None:
        response = self.client.request("GET", "/v1/qbo/connect", key=self.key)
        if response.status_code == 503 and "not_configured" in response.text:
            self.check("qbo authorization url", None, "skipped: QuickBooks Online is not configured (QboClientId)")
            return
        answer = self.expect(response, 200, "GET /v1/qbo/connect")
        query = parse_qs(urlsplit(answer["authorization_url"]).query)
        redirect = (query.get("redirect_uri") or [""])[0]
        expected = self.url + "/qbo/callback"
        ok = same_endpoint(redirect, expected) and (self.loopback or redirect.startswith("https://"))
        self.check("qbo authorization url", ok, f"redirect_uri {redirect}")

    def cleanup(self, keep: bool) -> None:
        if self.tenant_id is None or keep:
            return
        self.client.request(
            "PATCH", f"/v1/tenants/{self.tenant_id}", key=self.client.admin_key, body={"status": "inactive"}
        )
        after = self.client.request("GET", "/v1/tenant", key=self.key)
        self.checks.append(Check("smoke tenant deactivated", after.status_code in (401, 403), f"{self.tenant_id}"))

    # -- SOAP ------------------------------------------------------------------------------------------------------

    def _soap_result(self, operation: str, params: dict[str, str]) -> Any:
        import requests

        assert self.app_url is not None
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{INTUIT_NS}{operation}"'}
        try:
            response = requests.post(
                self.app_url, data=soap_envelope(operation, params), headers=headers, timeout=self.client.timeout
            )
        except requests.RequestException as exc:
            raise _Failed(f"{operation}: cannot reach {self.app_url}: {exc}") from None
        if response.status_code != 200:
            raise _Failed(f"{operation}: HTTP {response.status_code}: {response.text[:300]}")
        try:
            root = parse_xml(response.content)
        except QbxmlParseError as exc:
            raise _Failed(f"{operation}: the answer is not XML: {exc}") from None
        return next(iter(root.iter(f"{{{INTUIT_NS}}}{operation}Result")), None)

    def _soap(self, operation: str, params: dict[str, str]) -> str | None:
        found = self._soap_result(operation, params)
        return None if found is None else str(found.text or "")

    def _soap_strings(self, operation: str, params: dict[str, str]) -> list[str]:
        found = self._soap_result(operation, params)
        return [] if found is None else [s.text or "" for s in found.iter(f"{{{INTUIT_NS}}}string")]

    def run(self, keep: bool = False) -> dict[str, Any]:
        try:
            for step in (self.api, self.tenant, self.connector, self.web_connector, self.records, self.qbo):
                step()
        except _Failed as failure:
            if not self.checks or self.checks[-1].ok is not False:
                self.checks.append(Check(str(failure).split(":")[0], False, str(failure)))
        finally:
            self.cleanup(keep)
        ok = all(c.ok is not False for c in self.checks)
        return {"url": self.url, "ok": ok, "tenant_id": self.tenant_id, "checks": [asdict(c) for c in self.checks]}


def run_smoke(client: Client, keep: bool = False) -> dict[str, Any]:
    return Smoke(client).run(keep=keep)
