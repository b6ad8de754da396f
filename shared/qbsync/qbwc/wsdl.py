"""The WSDL served at ``?wsdl`` and the HTML page behind the QWC file's AppSupport URL.

The WSDL is generated from :data:`qbsync.qbwc.protocol.OPERATIONS`, so it cannot drift from what the dispatcher
accepts. It follows Intuit's ``QBWebConnectorSvc.wsdl``: document/literal SOAP 1.1, ``elementFormDefault``
qualified, every parameter an optional ``s:string`` except the ``s:int`` ones Intuit declares mandatory.
"""

from __future__ import annotations

import html

from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbwc.protocol import INTUIT_NS, OPERATIONS, Operation, XsdType

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
SOAP_HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"
SERVICE_NAME = "QBWebConnectorSvc"
PORT_TYPE_NAME = "QBWebConnectorSvcSoap"

_NSMAP = {"wsdl": WSDL_NS, "soap": WSDL_SOAP_NS, "s": XSD_NS, "tns": INTUIT_NS}


def _w(tag: str) -> str:
    return f"{{{WSDL_NS}}}{tag}"


def _s(tag: str) -> str:
    return f"{{{XSD_NS}}}{tag}"


def _soap(tag: str) -> str:
    return f"{{{WSDL_SOAP_NS}}}{tag}"


def _type_ref(xsd_type: XsdType) -> str:
    return "tns:ArrayOfString" if xsd_type is XsdType.ARRAY_OF_STRING else f"s:{xsd_type.value}"


def _schema_element(schema: etree._Element, name: str, children: list[tuple[str, XsdType, int]]) -> None:
    element = etree.SubElement(schema, _s("element"), name=name)
    complex_type = etree.SubElement(element, _s("complexType"))
    if not children:
        return
    sequence = etree.SubElement(complex_type, _s("sequence"))
    for child_name, xsd_type, min_occurs in children:
        etree.SubElement(
            sequence,
            _s("element"),
            minOccurs=str(min_occurs),
            maxOccurs="1",
            name=child_name,
            type=_type_ref(xsd_type),
        )


def _types(definitions: etree._Element) -> None:
    types = etree.SubElement(definitions, _w("types"))
    schema = etree.SubElement(types, _s("schema"), elementFormDefault="qualified", targetNamespace=INTUIT_NS)
    array = etree.SubElement(schema, _s("complexType"), name="ArrayOfString")
    etree.SubElement(
        etree.SubElement(array, _s("sequence")),
        _s("element"),
        minOccurs="0",
        maxOccurs="unbounded",
        name="string",
        nillable="true",
        type="s:string",
    )
    for op in OPERATIONS.values():
        _schema_element(schema, op.name, [(p.wire_name, p.xsd_type, p.min_occurs) for p in op.params])
        _schema_element(schema, op.response_element, [(op.result_element, op.result_type, op.result_min_occurs)])


def _messages(definitions: etree._Element, op: Operation) -> None:
    for suffix, element in (("SoapIn", op.name), ("SoapOut", op.response_element)):
        message = etree.SubElement(definitions, _w("message"), name=f"{op.name}{suffix}")
        etree.SubElement(message, _w("part"), name="parameters", element=f"tns:{element}")


def wsdl_document(endpoint_url: str) -> bytes:
    """The complete WSDL 1.1 document (UTF-8 bytes) with ``soap:address`` pointing at ``endpoint_url``."""
    definitions = etree.Element(_w("definitions"), nsmap=_NSMAP, targetNamespace=INTUIT_NS)
    _types(definitions)
    for op in OPERATIONS.values():
        _messages(definitions, op)

    port_type = etree.SubElement(definitions, _w("portType"), name=PORT_TYPE_NAME)
    for op in OPERATIONS.values():
        operation = etree.SubElement(port_type, _w("operation"), name=op.name)
        etree.SubElement(operation, _w("input"), message=f"tns:{op.name}SoapIn")
        etree.SubElement(operation, _w("output"), message=f"tns:{op.name}SoapOut")

    binding = etree.SubElement(definitions, _w("binding"), name=PORT_TYPE_NAME, type=f"tns:{PORT_TYPE_NAME}")
    etree.SubElement(binding, _soap("binding"), transport=SOAP_HTTP_TRANSPORT, style="document")
    for op in OPERATIONS.values():
        operation = etree.SubElement(binding, _w("operation"), name=op.name)
        etree.SubElement(operation, _soap("operation"), soapAction=op.soap_action, style="document")
        for direction in ("input", "output"):
            etree.SubElement(etree.SubElement(operation, _w(direction)), _soap("body"), use="literal")

    service = etree.SubElement(definitions, _w("service"), name=SERVICE_NAME)
    port = etree.SubElement(service, _w("port"), name=PORT_TYPE_NAME, binding=f"tns:{PORT_TYPE_NAME}")
    etree.SubElement(port, _soap("address"), location=endpoint_url)
    data: bytes = etree.tostring(definitions, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return data


def support_page_html(app_name: str) -> str:
    """A small, self-contained HTML5 page (also well-formed XML) for the QWC ``AppSupport`` URL.

    The Web Connector only checks that this URL answers on the same host as ``AppURL``; people who click it
    from the Web Connector window get short troubleshooting hints.
    """
    name = html.escape(app_name, quote=True)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8" />\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1" />\n'
        f"<title>{name} — QuickBooks Web Connector support</title>\n"
        "</head>\n"
        "<body>\n"
        f"<h1>{name}</h1>\n"
        f"<p>This address is the QuickBooks Web Connector endpoint of {name}. It exchanges data with "
        "QuickBooks Desktop through the Web Connector; there is nothing to do on this page.</p>\n"
        "<h2>Troubleshooting</h2>\n"
        "<ul>\n"
        "<li>Check that QuickBooks is running and the company file is open, or that the application was granted "
        "access to run when QuickBooks is closed.</li>\n"
        "<li>Check the password entered for this application in the Web Connector.</li>\n"
        "<li>For a detailed log, set the Web Connector log level to VERBOSE and send us QWCLog.txt.</li>\n"
        "</ul>\n"
        "</body>\n"
        "</html>\n"
    )
