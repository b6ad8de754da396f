"""SOAP 1.1 envelope parsing, rendering and dispatch for the QuickBooks Web Connector endpoint.

Pure protocol code: the caller supplies the HTTP body and ``SOAPAction`` header and gets back status, body and
content type; the business behaviour lives in a :class:`WebConnectorService` plugged in by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lxml import etree  # type: ignore[import-untyped]

from qbsync.observability import get_logger
from qbsync.qbwc.protocol import INTUIT_NS, OPERATIONS, SOAP11_ENV_NS, SOAP12_ENV_NS, Operation, XsdType
from qbsync.qbxml.safexml import safe_parser

CONTENT_TYPE = "text/xml; charset=utf-8"
#: Default request cap: API Gateway refuses more than 10 MB anyway (Lambda's own limit is 6 MB).
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

SOAP_CLIENT = "soap:Client"
SOAP_SERVER = "soap:Server"
SOAP_MUST_UNDERSTAND = "soap:MustUnderstand"
_FAULTCODE_RE = re.compile(r"^soap:(Client|Server|MustUnderstand|VersionMismatch)(\.[A-Za-z0-9_.-]+)?$")
_GENERIC_SERVER_FAULT = "The server could not process the request."
#: Catches DOCTYPE/ENTITY before libxml2 sees it (ASCII-compatible encodings); the parsed tree is re-checked too.
_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_MAX_FAULTSTRING = 300


class SoapFault(Exception):
    """A SOAP 1.1 fault. Raise it from the service to send a deliberate fault (its text goes to the client)."""

    def __init__(self, faultcode: str = SOAP_SERVER, faultstring: str = _GENERIC_SERVER_FAULT) -> None:
        if not _FAULTCODE_RE.match(faultcode):
            raise ValueError(f"not a SOAP 1.1 fault code: {faultcode!r}")
        super().__init__(faultstring)
        self.faultcode = faultcode
        self.faultstring = faultstring

    @classmethod
    def client(cls, faultstring: str) -> SoapFault:
        return cls(SOAP_CLIENT, faultstring)

    @classmethod
    def server(cls, faultstring: str = _GENERIC_SERVER_FAULT) -> SoapFault:
        return cls(SOAP_SERVER, faultstring)

    def __repr__(self) -> str:
        return f"SoapFault(faultcode={self.faultcode!r}, faultstring={self.faultstring!r})"


@dataclass(frozen=True)
class SoapCall:
    """A parsed request: the operation's wire name and every declared parameter as text (``""`` if absent)."""

    operation: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SoapResponse:
    status: int
    body: bytes
    content_type: str = CONTENT_TYPE


class WebConnectorService(Protocol):
    """What the Web Connector can ask of us: one method per SOAP operation, parameters as the text QBWC sent.

    Every parameter arrives as ``str`` — ``""`` when the element is empty or missing — including
    ``qbxml_major_vers``/``qbxml_minor_vers``, which the WSDL types as ``int``. String results may be ``None``
    (rendered as an empty element). Raise :class:`SoapFault` to answer with a deliberate fault; any other
    exception becomes a generic ``soap:Server`` fault.
    """

    def server_version(self) -> str | None: ...

    def client_version(self, str_version: str) -> str | None: ...

    def authenticate(self, str_user_name: str, str_password: str) -> list[str]: ...

    def send_request_xml(
        self,
        ticket: str,
        str_hcp_response: str,
        str_company_file_name: str,
        qbxml_country: str,
        qbxml_major_vers: str,
        qbxml_minor_vers: str,
    ) -> str | None: ...

    def receive_response_xml(self, ticket: str, response: str, hresult: str, message: str) -> int: ...

    def connection_error(self, ticket: str, hresult: str, message: str) -> str | None: ...

    def get_last_error(self, ticket: str) -> str | None: ...

    def close_connection(self, ticket: str) -> str | None: ...

    def get_interactive_url(self, wc_ticket: str, session_id: str) -> str | None: ...

    def interactive_done(self, wc_ticket: str) -> str | None: ...

    def interactive_rejected(self, wc_ticket: str, reason: str) -> str | None: ...

    def get_server_version(self, ticket: str) -> str | None: ...


# --------------------------------------------------------------------------------------------------- parsing


def _short(text: str) -> str:
    return text if len(text) <= _MAX_FAULTSTRING else text[: _MAX_FAULTSTRING - 1] + "…"


def _qname(element: etree._Element) -> etree.QName:
    return etree.QName(element)


def _normalize_action(soap_action: str | None) -> str | None:
    if soap_action is None:
        return None
    action = soap_action.strip().strip('"').strip()
    return action or None


def _child_elements(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _parse_xml(body: bytes, max_body_bytes: int) -> etree._Element:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise SoapFault.client("request body must be bytes")
    raw = bytes(body)
    if len(raw) > max_body_bytes:
        raise SoapFault.client(f"request body is {len(raw)} bytes; at most {max_body_bytes} are accepted")
    if not raw.strip():
        raise SoapFault.client("empty request body; expected a SOAP 1.1 envelope")
    if _DTD_RE.search(raw):
        raise SoapFault.client("DOCTYPE and ENTITY declarations are not allowed")
    try:
        root = etree.fromstring(raw, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapFault.client(_short(f"malformed XML: {exc.msg or exc}")) from None
    except ValueError as exc:
        raise SoapFault.client(_short(f"malformed XML: {exc}")) from None
    if root is None:
        raise SoapFault.client("empty request body; expected a SOAP 1.1 envelope")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SoapFault.client("DOCTYPE and ENTITY declarations are not allowed")
    return root


def _find_body(envelope: etree._Element) -> etree._Element:
    qname = _qname(envelope)
    if qname.namespace == SOAP12_ENV_NS:
        raise SoapFault.client("SOAP 1.2 envelopes are not supported; send a SOAP 1.1 envelope")
    if qname.localname != "Envelope" or qname.namespace != SOAP11_ENV_NS:
        raise SoapFault.client(
            f"not a SOAP 1.1 envelope: root element is {qname.text!r}, expected {{{SOAP11_ENV_NS}}}Envelope"
        )
    body: etree._Element | None = None
    for child in _child_elements(envelope):
        child_name = _qname(child)
        if child_name.namespace == SOAP11_ENV_NS and child_name.localname == "Header":
            _check_headers(child)
        elif child_name.namespace == SOAP11_ENV_NS and child_name.localname == "Body":
            if body is not None:
                raise SoapFault.client("SOAP envelope has more than one Body")
            body = child
    if body is None:
        raise SoapFault.client("SOAP envelope has no Body")
    return body


def _check_headers(header: etree._Element) -> None:
    """Headers are ignored, but SOAP 1.1 obliges us to refuse ones marked mustUnderstand."""
    for entry in _child_elements(header):
        if entry.get(f"{{{SOAP11_ENV_NS}}}mustUnderstand") in ("1", "true"):
            raise SoapFault(SOAP_MUST_UNDERSTAND, f"header {_qname(entry).text!r} is not understood")


def _read_params(operation: Operation, element: etree._Element) -> dict[str, str]:
    values: dict[str, str] = {}
    declared = {param.wire_name for param in operation.params}
    for child in _child_elements(element):
        child_name = _qname(child)
        # elementFormDefault="qualified" means Intuit's namespace; unqualified children are tolerated as well.
        if child_name.namespace not in (INTUIT_NS, None) or child_name.localname not in declared:
            continue
        if child_name.localname in values:
            raise SoapFault.client(f"parameter {child_name.localname!r} of {operation.name} appears more than once")
        if _child_elements(child):
            raise SoapFault.client(
                f"parameter {child_name.localname!r} of {operation.name} must be text (escape embedded XML)"
            )
        values[child_name.localname] = child.text or ""
    return {param.wire_name: values.get(param.wire_name, "") for param in operation.params}


def parse_request(body: bytes, soap_action: str | None, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> SoapCall:
    """Parse a Web Connector request. The operation comes from the Body's first element, never from SOAPAction.

    ``soap_action`` (quoted or not, possibly absent) is only compared with the body and a mismatch is logged:
    QBWC always agrees with itself, and trusting the body keeps one source of truth. Raises
    :class:`SoapFault` (``soap:Client``) with a human-readable reason for anything that is not a valid call.
    """
    envelope = _parse_xml(body, max_body_bytes)
    soap_body = _find_body(envelope)
    children = _child_elements(soap_body)
    if not children:
        raise SoapFault.client("SOAP Body is empty; expected a Web Connector operation element")
    element = children[0]
    name = _qname(element)
    if name.namespace != INTUIT_NS:
        found = f"namespace {name.namespace!r}" if name.namespace else "no namespace"
        raise SoapFault.client(f"operation element {name.localname!r} is in {found}; expected {INTUIT_NS!r}")
    operation = OPERATIONS.get(name.localname)
    if operation is None:
        raise SoapFault.client(f"unknown operation {name.localname!r}")
    action = _normalize_action(soap_action)
    if action is not None and action not in (operation.soap_action, operation.name):
        get_logger().warning(
            "SOAPAction disagrees with the SOAP Body; using the Body",
            extra={"soap_action": _short(action), "operation": operation.name},
        )
    return SoapCall(operation.name, _read_params(operation, element))


# ------------------------------------------------------------------------------------------------- rendering


def _envelope() -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(f"{{{SOAP11_ENV_NS}}}Envelope", nsmap={"soap": SOAP11_ENV_NS})
    body = etree.SubElement(envelope, f"{{{SOAP11_ENV_NS}}}Body")
    return envelope, body


def _serialize(envelope: etree._Element) -> bytes:
    data: bytes = etree.tostring(envelope, xml_declaration=True, encoding="utf-8")
    return data


def _set_text(element: etree._Element, value: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"expected str or None, got {type(value).__name__}")
    element.text = value  # lxml escapes; raises ValueError on characters XML 1.0 cannot carry


def _int_text(operation: Operation, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{operation.name} must return int, got {type(value).__name__}")
    return str(value)


def render_response(operation: str, result: Any) -> bytes:
    """Render ``{op}Response/{op}Result`` in Intuit's namespace (default-namespaced, like .NET services do).

    ``authenticate``'s ``ArrayOfString`` items are ``<string>`` elements in the same namespace — QBWC does not
    find them otherwise. ``None`` renders as an empty element (not allowed for the ``int`` result).
    """
    op = OPERATIONS.get(operation)
    if op is None:
        raise ValueError(f"unknown operation {operation!r}")
    envelope, body = _envelope()
    response = etree.SubElement(body, f"{{{INTUIT_NS}}}{op.response_element}", nsmap={None: INTUIT_NS})
    result_element = etree.SubElement(response, f"{{{INTUIT_NS}}}{op.result_element}")
    if op.result_type is XsdType.INT:
        result_element.text = _int_text(op, result)
    elif op.result_type is XsdType.ARRAY_OF_STRING:
        if result is not None:
            if isinstance(result, str | bytes) or not isinstance(result, Sequence):
                raise TypeError(f"{op.name} must return a list of strings, got {type(result).__name__}")
            for item in result:
                _set_text(etree.SubElement(result_element, f"{{{INTUIT_NS}}}string"), item)
    else:
        _set_text(result_element, result)
    return _serialize(envelope)


def render_fault(fault: SoapFault) -> bytes:
    """``soap:Fault`` with unqualified ``faultcode``/``faultstring`` children, as SOAP 1.1 section 4.4 defines."""
    envelope, body = _envelope()
    fault_element = etree.SubElement(body, f"{{{SOAP11_ENV_NS}}}Fault")
    etree.SubElement(fault_element, "faultcode").text = fault.faultcode
    faultstring = etree.SubElement(fault_element, "faultstring")
    try:
        faultstring.text = fault.faultstring
    except (TypeError, ValueError):
        faultstring.text = _GENERIC_SERVER_FAULT
    return _serialize(envelope)


def fault_response(fault: SoapFault) -> SoapResponse:
    """SOAP 1.1 over HTTP: every fault travels with status 500, whatever its code."""
    return SoapResponse(status=500, body=render_fault(fault))


# -------------------------------------------------------------------------------------------------- dispatch


def dispatch(
    body: bytes, soap_action: str | None, service: WebConnectorService, *, max_body_bytes: int
) -> SoapResponse:
    """Parse one HTTP request, call the matching ``service`` method and render its result or a fault.

    Never raises and never leaks exception text: unexpected errors become a generic ``soap:Server`` fault and
    are logged (without the values of secret parameters such as ``strPassword``).
    """
    logger = get_logger()
    try:
        call = parse_request(body, soap_action, max_body_bytes=max_body_bytes)
    except SoapFault as fault:
        logger.warning("rejected Web Connector request", extra={"faultstring": fault.faultstring})
        return fault_response(fault)
    except Exception:
        logger.exception("could not parse Web Connector request")
        return fault_response(SoapFault.server())

    op = OPERATIONS[call.operation]
    secret = bool(op.secret_params)
    kwargs = {param.py_name: call.params[param.wire_name] for param in op.params}
    try:
        result = getattr(service, op.method)(**kwargs)
        payload = render_response(op.name, result)
    except SoapFault as fault:
        extra: dict[str, Any] = {"operation": op.name, "faultcode": fault.faultcode}
        if not secret:
            extra["faultstring"] = fault.faultstring
        logger.info("Web Connector call answered with a fault", extra=extra)
        return fault_response(fault)
    except Exception as exc:
        if secret:
            # The exception text or traceback could quote the password: log the type only.
            logger.error("Web Connector call failed", extra={"operation": op.name, "error_type": type(exc).__name__})
        else:
            logger.exception("Web Connector call failed", extra={"operation": op.name})
        return fault_response(SoapFault.server())
    logger.debug("Web Connector call answered", extra={"operation": op.name})
    return SoapResponse(status=200, body=payload)
