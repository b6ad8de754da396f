"""Safe qbXML parsing and small lxml helpers for the fake QuickBooks company.

QuickBooks' request processor rejects a whole message set (HRESULT 0x80040400) when the text is not
well-formed, uses characters outside ISO-8859-1, or carries a DTD; the fake refuses those before
lxml sees them, and never resolves entities or touches the network.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from lxml import etree

HRESULT_PARSE_ERROR = "0x80040400"
HRESULT_COULD_NOT_START = "0x80040408"
HRESULT_OTHER_FILE_OPEN = "0x8004040A"
HRESULT_VERSION_NOT_SUPPORTED = "0x80040423"

PARSE_ERROR_MESSAGE = "QuickBooks found an error when parsing the provided XML text stream."
COULD_NOT_START_MESSAGE = "Could not start QuickBooks."
OTHER_FILE_OPEN_MESSAGE = "A QuickBooks company data file is already open and it is different from the one requested."
VERSION_NOT_SUPPORTED_MESSAGE = "The version of QBXML that was requested is not supported or is unknown."

_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>", re.DOTALL)
_DTD_RE = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)
_VERSION_RE = re.compile(r"""version\s*=\s*["']([^"']+)["']""")
_AMOUNT_RE = re.compile(r"^[+-]?[0-9]{1,13}(\.[0-9]{1,5})?$")


class QBXMLProcessingError(Exception):
    """What ``IRequestProcessor.ProcessRequest`` throws: no response at all, only an HRESULT and a message."""

    def __init__(self, hresult: str, message: str) -> None:
        super().__init__(f"{hresult}: {message}")
        self.hresult = hresult
        self.message = message


def parse_error(detail: str = "") -> QBXMLProcessingError:
    err = QBXMLProcessingError(HRESULT_PARSE_ERROR, PARSE_ERROR_MESSAGE)
    err.detail = detail  # type: ignore[attr-defined]
    return err


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


def parse_document(text: str | bytes) -> tuple[str, etree._Element]:
    """Parse a qbXML request; return (qbxml version, root). Raises a parse error like QuickBooks does."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise parse_error("not UTF-8") from exc
    if any(ord(ch) > 0xFF for ch in text):
        raise parse_error("character outside ISO-8859-1")
    if _DTD_RE.search(text):
        raise parse_error("DTD / entity declarations are not accepted")
    body = _DECL_RE.sub("", text, count=1)
    try:
        root = etree.fromstring(body.encode("utf-8"), parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise parse_error(str(exc)) from exc
    if root.getroottree().docinfo.doctype:
        raise parse_error("doctype")
    version: str | None = None
    for sib in root.itersiblings(preceding=True):
        if isinstance(sib, etree._ProcessingInstruction) and sib.target == "qbxml":
            match = _VERSION_RE.search(sib.text or "")
            version = match.group(1) if match else None
    if version is None:
        raise parse_error("missing <?qbxml version?>")
    if root.tag != "QBXML":
        raise parse_error("root is not QBXML")
    return version, root


def child(el: etree._Element, tag: str) -> etree._Element | None:
    found = el.find(tag)
    return found


def text(el: etree._Element | None, tag: str | None = None, default: str | None = None) -> str | None:
    if el is None:
        return default
    target = el.find(tag) if tag else el
    if target is None:
        return default
    return target.text if target.text is not None else ""


def texts(el: etree._Element, tag: str) -> list[str]:
    return [(c.text or "") for c in el.findall(tag)]


def sub(parent: etree._Element, tag: str, value: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, tag)
    if value is not None:
        el.text = value
    return el


def is_amount(value: str) -> bool:
    return bool(_AMOUNT_RE.match(value.strip()))


def to_decimal(value: str | None, default: Decimal | None = None) -> Decimal | None:
    if value is None:
        return default
    try:
        return Decimal(value.strip())
    except InvalidOperation as exc:
        raise parse_error(f"bad number {value!r}") from exc


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f}"


def bool_text(value: bool) -> str:
    return "true" if value else "false"


def serialize(root: etree._Element) -> str:
    """Serialize like QuickBooks: ``<?xml version="1.0" ?>`` then the document (no encoding declaration)."""
    body: str = etree.tostring(root, encoding="unicode")
    return '<?xml version="1.0" ?>\n' + body
