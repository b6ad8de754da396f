"""The generated WSDL: faithful to Intuit's, and usable by a real SOAP client (zeep) against ``dispatch``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbwc import INTUIT_NS, OPERATIONS, SoapFault, dispatch, support_page_html, wsdl_document
from qbsync.qbwc.wsdl import WSDL_NS, WSDL_SOAP_NS, XSD_NS
from tests.qbwc import QBWC_REFERENCE, FakeService

zeep = pytest.importorskip("zeep")

NS = {"wsdl": WSDL_NS, "soap": WSDL_SOAP_NS, "s": XSD_NS}
ENDPOINT = "https://qbwc.example.com/v1/qbwc?tenant=a&x=<1>"


@pytest.fixture(scope="module")
def wsdl_root() -> etree._Element:
    return etree.fromstring(wsdl_document(ENDPOINT))


def test_wsdl_declares_every_operation_document_literal(wsdl_root: etree._Element) -> None:
    assert wsdl_root.get("targetNamespace") == INTUIT_NS
    schema = wsdl_root.find("wsdl:types/s:schema", NS)
    assert schema.get("elementFormDefault") == "qualified" and schema.get("targetNamespace") == INTUIT_NS
    port_ops = [op.get("name") for op in wsdl_root.findall("wsdl:portType/wsdl:operation", NS)]
    assert port_ops == list(OPERATIONS)
    binding = wsdl_root.find("wsdl:binding", NS)
    assert binding.find("soap:binding", NS).get("style") == "document"
    for op in binding.findall("wsdl:operation", NS):
        assert op.find("soap:operation", NS).get("soapAction") == f"{INTUIT_NS}{op.get('name')}"
        assert [b.get("use") for b in op.findall("*/soap:body", NS)] == ["literal", "literal"]
    assert wsdl_root.find("wsdl:service/wsdl:port/soap:address", NS).get("location") == ENDPOINT
    assert b"&amp;x=&lt;1&gt;" in wsdl_document(ENDPOINT)


def _declarations(schema: etree._Element) -> dict[str, list[tuple[str | None, ...]]]:
    """Top-level element name -> its children's (name, type, minOccurs, maxOccurs)."""
    result: dict[str, list[tuple[str | None, ...]]] = {}
    for element in schema.findall("s:element", NS):
        children = element.findall("s:complexType/s:sequence/s:element", NS)
        result[element.get("name")] = [
            (c.get("name"), c.get("type"), c.get("minOccurs"), c.get("maxOccurs")) for c in children
        ]
    return result


def test_types_match_the_reference_wsdl(wsdl_root: etree._Element) -> None:
    reference = QBWC_REFERENCE / "wsdl" / "QBWebConnectorSvc_full_CONSTRUCTED.wsdl"
    if not reference.is_file():
        pytest.skip(f"{reference} not available")
    theirs = etree.parse(str(reference)).getroot().find("wsdl:types/s:schema", NS)
    ours = wsdl_root.find("wsdl:types/s:schema", NS)
    assert _declarations(ours) == _declarations(theirs)
    decl = _declarations(ours)
    assert ("qbXMLMajorVers", "s:int", "1", "1") in decl["sendRequestXML"]
    assert decl["receiveResponseXMLResponse"] == [("receiveResponseXMLResult", "s:int", "1", "1")]
    assert decl["authenticateResponse"] == [("authenticateResult", "tns:ArrayOfString", "0", "1")]
    array = ours.find("s:complexType[@name='ArrayOfString']/s:sequence/s:element", NS)
    assert (array.get("name"), array.get("maxOccurs"), array.get("nillable")) == ("string", "unbounded", "true")


# ------------------------------------------------------------------------------------- zeep, end to end


class _Server:
    def __init__(self) -> None:
        self.service = FakeService()
        self.soap_actions: list[str | None] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/qbwc"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(200, wsdl_document(server.url), "text/xml; charset=utf-8")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                action = self.headers.get("SOAPAction")
                server.soap_actions.append(action)
                response = dispatch(body, action, server.service, max_body_bytes=1024 * 1024)
                self._send(response.status, response.body, response.content_type)

        return Handler


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def client(server: _Server) -> Any:
    transport = zeep.Transport(timeout=5, operation_timeout=5)
    return zeep.Client(f"{server.url}?wsdl", transport=transport)


def test_zeep_calls_every_operation(server: _Server, client: Any) -> None:
    qbxml = '<?xml version="1.0"?>\r\n<?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError"/></QBXML>'
    server.service.results.update(
        {"authenticate": ["c94c-ticket", "", None, "60"], "receiveResponseXML": 42, "sendRequestXML": qbxml}
    )
    svc = client.service
    calls: dict[str, Any] = {
        "serverVersion": lambda: svc.serverVersion(),
        "clientVersion": lambda: svc.clientVersion(strVersion="2.3.0.215"),
        "authenticate": lambda: svc.authenticate(strUserName="api", strPassword="pw"),
        "sendRequestXML": lambda: svc.sendRequestXML(
            ticket="t",
            strHCPResponse="<QBXML>&amp;</QBXML>",
            strCompanyFileName=r"C:\a.QBW",
            qbXMLCountry="US",
            qbXMLMajorVers=13,
            qbXMLMinorVers=0,
        ),
        "receiveResponseXML": lambda: svc.receiveResponseXML(ticket="t", response="<QBXML/>", hresult="", message=""),
        "connectionError": lambda: svc.connectionError(ticket="t", hresult="0x80040400", message="boom"),
        "getLastError": lambda: svc.getLastError(ticket="t"),
        "closeConnection": lambda: svc.closeConnection(ticket="t"),
        "getInteractiveURL": lambda: svc.getInteractiveURL(wcTicket="t", sessionID="s"),
        "interactiveDone": lambda: svc.interactiveDone(wcTicket="t"),
        "interactiveRejected": lambda: svc.interactiveRejected(wcTicket="t", reason="no"),
        "getServerVersion": lambda: svc.getServerVersion(ticket="t"),
    }
    assert set(calls) == set(OPERATIONS)
    results = {name: call() for name, call in calls.items()}

    assert results["authenticate"] == ["c94c-ticket", None, None, "60"]  # zeep reads empty items as None
    assert results["receiveResponseXML"] == 42 and isinstance(results["receiveResponseXML"], int)
    assert results["sendRequestXML"] == qbxml  # \r survives as &#13;
    for name in set(OPERATIONS) - {"authenticate", "receiveResponseXML", "sendRequestXML"}:
        assert results[name] == f"{name}-result", name

    assert [name for name, _ in server.service.calls] == list(calls)
    by_name = dict(server.service.calls)
    assert by_name["authenticate"] == {"str_user_name": "api", "str_password": "pw"}
    assert by_name["sendRequestXML"]["str_hcp_response"] == "<QBXML>&amp;</QBXML>"
    assert (by_name["sendRequestXML"]["qbxml_major_vers"], by_name["sendRequestXML"]["qbxml_minor_vers"]) == ("13", "0")
    assert by_name["serverVersion"] == {}
    assert server.soap_actions[0] == f'"{INTUIT_NS}serverVersion"'


def test_zeep_sees_faults(server: _Server, client: Any) -> None:
    server.service.results["getLastError"] = SoapFault.client("unknown ticket")
    server.service.results["closeConnection"] = RuntimeError("secret internals")
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.getLastError(ticket="nope")
    assert caught.value.message == "unknown ticket"
    assert caught.value.code.endswith("Client")
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.closeConnection(ticket="t")
    assert caught.value.code.endswith("Server") and "secret" not in caught.value.message


# ------------------------------------------------------------------------------------------- support page


def test_support_page_is_escaped_valid_html() -> None:
    page = support_page_html('Acme <script>alert("x")</script> & Co')
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "&amp; Co" in page
    root = etree.fromstring(page.encode(), parser=etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == "html" and root.find("head/title") is not None
    assert "Acme" in root.findtext("body/h1")
