"""Hostile-safe XML parsing shared by everything that reads qbXML (and by the SOAP layer if it wants to).

qbXML never needs a DTD, so any document with a ``DOCTYPE`` (or an ``ENTITY`` declaration) is refused before
libxml2 sees it, and the parser itself has entity resolution, DTD loading and network access off. This blocks
XXE (external entities / external DTD) and entity-expansion bombs ("billion laughs").
"""

from __future__ import annotations

import re

from lxml import etree

from qbsync.qbxml.errors import QbxmlParseError

#: Refuse bigger documents outright (a QuickBooks response is bounded by the 6 MB Lambda payload anyway).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024

_DTD_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*\?>")


def safe_parser() -> etree.XMLParser:
    """A fresh lxml parser with every dangerous feature off (parsers are not thread-safe: don't share one)."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=False,
    )


def parse_xml(data: str | bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._Element:
    """Parse ``data`` safely and return the root element, or raise :class:`QbxmlParseError`.

    ``str`` input may keep its ``<?xml ... encoding=...?>`` declaration (it is dropped before parsing: the
    text is already decoded). ``bytes`` are decoded by libxml2 according to their declaration/BOM.
    """
    if isinstance(data, str):
        raw = data.encode("utf-8", errors="surrogatepass")
    elif isinstance(data, bytes | bytearray):
        raw = bytes(data)
    else:
        raise QbxmlParseError(f"expected str or bytes, got {type(data).__name__}")
    if len(raw) > max_bytes:
        raise QbxmlParseError(f"document is {len(raw)} bytes, more than the {max_bytes} accepted")
    if _DTD_RE.search(raw):
        raise QbxmlParseError("DOCTYPE/ENTITY declarations are not allowed in qbXML")
    try:
        if isinstance(data, str):
            root = etree.fromstring(_XML_DECL_RE.sub("", data, count=1), parser=safe_parser())
        else:
            root = etree.fromstring(raw, parser=safe_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise QbxmlParseError(f"malformed XML: {exc}") from exc
    if root is None:
        raise QbxmlParseError("empty document")
    doctype = root.getroottree().docinfo.doctype
    if doctype:
        raise QbxmlParseError("DOCTYPE is not allowed in qbXML")
    return root
