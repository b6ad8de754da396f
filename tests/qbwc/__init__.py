"""Helpers shared by the Web Connector SOAP tests: reference paths, a recording fake service, envelope builders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbwc.protocol import INTUIT_NS, OPERATIONS, SOAP11_ENV_NS
from tests.support import captured_logs  # noqa: F401  (re-exported for the qbwc tests)

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
QBWC_REFERENCE = REFERENCE / "qbwc"
ENVELOPES = QBWC_REFERENCE / "captures" / "extracted_envelopes"

#: A result of the right type for every operation (string results by default).
DEFAULT_RESULTS: dict[str, Any] = {
    "authenticate": ["ticket-1", "none"],
    "receiveResponseXML": 100,
}


class FakeService:
    """Implements every WebConnectorService method: records the call, returns a canned result (or raises it)."""

    def __init__(self, results: dict[str, Any] | None = None) -> None:
        self.results = {**DEFAULT_RESULTS, **(results or {})}
        self.calls: list[tuple[str, dict[str, str]]] = []

    def _answer(self, operation: str, **kwargs: str) -> Any:
        self.calls.append((operation, kwargs))
        result = self.results.get(operation, f"{operation}-result")
        if isinstance(result, BaseException):
            raise result
        return result

    def server_version(self) -> str | None:
        return self._answer("serverVersion")  # type: ignore[no-any-return]

    def client_version(self, str_version: str) -> str | None:
        return self._answer("clientVersion", str_version=str_version)  # type: ignore[no-any-return]

    def authenticate(self, str_user_name: str, str_password: str) -> list[str]:
        return self._answer(  # type: ignore[no-any-return]
            "authenticate", str_user_name=str_user_name, str_password=str_password
        )

    def send_request_xml(
        self,
        ticket: str,
        str_hcp_response: str,
        str_company_file_name: str,
        qbxml_country: str,
        qbxml_major_vers: str,
        qbxml_minor_vers: str,
    ) -> str | None:
        return self._answer(  # type: ignore[no-any-return]
            "sendRequestXML",
            ticket=ticket,
            str_hcp_response=str_hcp_response,
            str_company_file_name=str_company_file_name,
            qbxml_country=qbxml_country,
            qbxml_major_vers=qbxml_major_vers,
            qbxml_minor_vers=qbxml_minor_vers,
        )

    def receive_response_xml(self, ticket: str, response: str, hresult: str, message: str) -> int:
        return self._answer(  # type: ignore[no-any-return]
            "receiveResponseXML", ticket=ticket, response=response, hresult=hresult, message=message
        )

    def connection_error(self, ticket: str, hresult: str, message: str) -> str | None:
        return self._answer("connectionError", ticket=ticket, hresult=hresult, message=message)  # type: ignore[no-any-return]

    def get_last_error(self, ticket: str) -> str | None:
        return self._answer("getLastError", ticket=ticket)  # type: ignore[no-any-return]

    def close_connection(self, ticket: str) -> str | None:
        return self._answer("closeConnection", ticket=ticket)  # type: ignore[no-any-return]

    def get_interactive_url(self, wc_ticket: str, session_id: str) -> str | None:
        return self._answer("getInteractiveURL", wc_ticket=wc_ticket, session_id=session_id)  # type: ignore[no-any-return]

    def interactive_done(self, wc_ticket: str) -> str | None:
        return self._answer("interactiveDone", wc_ticket=wc_ticket)  # type: ignore[no-any-return]

    def interactive_rejected(self, wc_ticket: str, reason: str) -> str | None:
        return self._answer("interactiveRejected", wc_ticket=wc_ticket, reason=reason)  # type: ignore[no-any-return]

    def get_server_version(self, ticket: str) -> str | None:
        return self._answer("getServerVersion", ticket=ticket)  # type: ignore[no-any-return]


def build_envelope(operation: str, params: dict[str, str | None] | None = None, *, prefix: str | None = None) -> bytes:
    """A SOAP 1.1 request built with lxml; ``prefix=None`` puts the operation in the default namespace like QBWC.

    A ``None`` param value renders as an empty element (``<strHCPResponse />``).
    """
    envelope = etree.Element(f"{{{SOAP11_ENV_NS}}}Envelope", nsmap={"soap": SOAP11_ENV_NS})
    body = etree.SubElement(envelope, f"{{{SOAP11_ENV_NS}}}Body")
    element = etree.SubElement(body, f"{{{INTUIT_NS}}}{operation}", nsmap={prefix: INTUIT_NS})
    for name, value in (params or {}).items():
        etree.SubElement(element, f"{{{INTUIT_NS}}}{name}").text = value
    data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    return data


def all_params(operation: str) -> dict[str, str | None]:
    return {p.wire_name: f"{p.wire_name}-value" for p in OPERATIONS[operation].params}


def parse_response(body: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(body, parser=parser)


def body_payload(body: bytes) -> etree._Element:
    """The single element inside soap:Body of a response envelope (asserts the envelope shape on the way)."""
    root = parse_response(body)
    assert root.tag == f"{{{SOAP11_ENV_NS}}}Envelope"
    bodies = root.findall(f"{{{SOAP11_ENV_NS}}}Body")
    assert len(bodies) == 1
    children = [c for c in bodies[0] if isinstance(c.tag, str)]
    assert len(children) == 1
    return children[0]


def fault_of(body: bytes) -> tuple[str, str]:
    fault = body_payload(body)
    assert fault.tag == f"{{{SOAP11_ENV_NS}}}Fault"
    code = fault.find("faultcode")
    text = fault.find("faultstring")
    assert code is not None and text is not None
    return code.text or "", text.text or ""
