"""The QuickBooks Web Connector SOAP contract as data: one table drives parsing, rendering, dispatch and the WSDL.

Wire names (``strUserName``, ``qbXMLMajorVers`` …) are the ones Intuit's WSDL and the real Web Connector use; the
Programmer's Guide insists they are kept exactly. Python names are their snake_case twins and are the keyword
arguments of :class:`qbsync.qbwc.soap.WebConnectorService`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

#: Namespace of every operation, parameter and result element (including ``ArrayOfString``'s ``string`` items).
INTUIT_NS = "http://developer.intuit.com/"
SOAP11_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV_NS = "http://www.w3.org/2003/05/soap-envelope"


class XsdType(StrEnum):
    STRING = "string"
    INT = "int"
    ARRAY_OF_STRING = "ArrayOfString"


@dataclass(frozen=True)
class Param:
    """One request child element. The parser always hands the service a ``str`` (``""`` when empty or missing)."""

    wire_name: str
    py_name: str
    xsd_type: XsdType = XsdType.STRING
    #: Only used for the WSDL (Intuit declares the two qbXML version ints mandatory); parsing treats all as optional.
    min_occurs: int = 0


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    params: tuple[Param, ...]
    result_type: XsdType = XsdType.STRING
    #: Parameters whose values must never be logged (and the operation's errors are logged without their text).
    secret_params: frozenset[str] = frozenset()

    @property
    def response_element(self) -> str:
        return f"{self.name}Response"

    @property
    def result_element(self) -> str:
        return f"{self.name}Result"

    @property
    def soap_action(self) -> str:
        return f"{INTUIT_NS}{self.name}"

    @property
    def result_min_occurs(self) -> int:
        # Intuit's WSDL makes the int result mandatory (a value type in .NET); strings/arrays are optional.
        return 1 if self.result_type is XsdType.INT else 0


def _p(wire_name: str, py_name: str, xsd_type: XsdType = XsdType.STRING, min_occurs: int = 0) -> Param:
    return Param(wire_name, py_name, xsd_type, min_occurs)


_TICKET = _p("ticket", "ticket")
_WC_TICKET = _p("wcTicket", "wc_ticket")

_OPERATIONS: tuple[Operation, ...] = (
    # Real QBWC sends <serverVersion/> with no children (consolibyte's WSDL declares an optional strVersion:
    # unknown children are ignored by the parser, so both work).
    Operation("serverVersion", "server_version", ()),
    Operation("clientVersion", "client_version", (_p("strVersion", "str_version"),)),
    Operation(
        "authenticate",
        "authenticate",
        (_p("strUserName", "str_user_name"), _p("strPassword", "str_password")),
        XsdType.ARRAY_OF_STRING,
        secret_params=frozenset({"strPassword"}),
    ),
    Operation(
        "sendRequestXML",
        "send_request_xml",
        (
            _TICKET,
            _p("strHCPResponse", "str_hcp_response"),
            _p("strCompanyFileName", "str_company_file_name"),
            _p("qbXMLCountry", "qbxml_country"),
            _p("qbXMLMajorVers", "qbxml_major_vers", XsdType.INT, 1),
            _p("qbXMLMinorVers", "qbxml_minor_vers", XsdType.INT, 1),
        ),
    ),
    Operation(
        "receiveResponseXML",
        "receive_response_xml",
        (_TICKET, _p("response", "response"), _p("hresult", "hresult"), _p("message", "message")),
        XsdType.INT,
    ),
    Operation("connectionError", "connection_error", (_TICKET, _p("hresult", "hresult"), _p("message", "message"))),
    Operation("getLastError", "get_last_error", (_TICKET,)),
    Operation("closeConnection", "close_connection", (_TICKET,)),
    Operation("getInteractiveURL", "get_interactive_url", (_WC_TICKET, _p("sessionID", "session_id"))),
    Operation("interactiveDone", "interactive_done", (_WC_TICKET,)),
    Operation("interactiveRejected", "interactive_rejected", (_WC_TICKET, _p("reason", "reason"))),
    Operation("getServerVersion", "get_server_version", (_TICKET,)),
)

#: Every operation the Web Connector may call, by wire name, in the order of Intuit's documentation.
OPERATIONS: Mapping[str, Operation] = MappingProxyType({op.name: op for op in _OPERATIONS})
