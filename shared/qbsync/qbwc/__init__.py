"""QuickBooks Web Connector SOAP endpoint: protocol table, envelope parsing/rendering, dispatch and WSDL."""

from qbsync.qbwc.protocol import INTUIT_NS, OPERATIONS, Operation, Param, XsdType
from qbsync.qbwc.soap import (
    CONTENT_TYPE,
    DEFAULT_MAX_BODY_BYTES,
    SoapCall,
    SoapFault,
    SoapResponse,
    WebConnectorService,
    dispatch,
    fault_response,
    parse_request,
    render_fault,
    render_response,
)
from qbsync.qbwc.wsdl import support_page_html, wsdl_document

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_MAX_BODY_BYTES",
    "INTUIT_NS",
    "OPERATIONS",
    "Operation",
    "Param",
    "SoapCall",
    "SoapFault",
    "SoapResponse",
    "WebConnectorService",
    "XsdType",
    "dispatch",
    "fault_response",
    "parse_request",
    "render_fault",
    "render_response",
    "support_page_html",
    "wsdl_document",
]
