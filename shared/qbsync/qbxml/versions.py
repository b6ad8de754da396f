"""qbXML version negotiation and company-file identity from the Web Connector's ``strHCPResponse``.

Policy:

* We build qbXML **13.0** (QuickBooks 2014+). Any QuickBooks that supports 13.0 or newer gets 13.0 (qbXML is
  backward compatible; newer desktops accept older versions).
* Otherwise the highest supported version >= :data:`MINIMUM_VERSION` (7.0, QuickBooks 2008) is used.
* Below that, :class:`UnsupportedQbxmlVersion`.

What differs between 7.0 and 13.0 in what we emit (see :data:`ELEMENT_MIN_VERSION`): only ``ExternalGUID``
(CustomerAdd/ItemServiceAdd/ItemNonInventoryAdd >= 8.0; InvoiceAdd/ReceivePaymentAdd/JournalEntryAdd >= 9.0), which
the builders drop for older versions. Everything else we emit dates from <= 6.0 (``Addr5``/``Note`` in addresses:
6.0; ``IncludeRetElement``: 4.0; ``ReceivePaymentAdd``/``IncludeLinkedTxns``: 1.1), and the same output is valid
against the 13.0 XSD.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from qbsync.qbxml.errors import QbxmlParseError, UnsupportedQbxmlVersion
from qbsync.qbxml.safexml import parse_xml


class QbxmlVersion(NamedTuple):
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def parse(cls, text: str) -> QbxmlVersion:
        """``"13.0"`` → (13, 0). Country prefixes some editions use (``"CA3.0"``, ``"UK2.0"``) are ignored."""
        match = re.fullmatch(r"\s*[A-Za-z]*\s*(\d+)\.(\d+)\s*", text)
        if not match:
            raise ValueError(f"not a qbXML version: {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))


PREFERRED_VERSION = QbxmlVersion(13, 0)
MINIMUM_VERSION = QbxmlVersion(7, 0)

#: (request element, child element) → first qbXML version that accepts it, for elements newer than the minimum.
ELEMENT_MIN_VERSION: dict[tuple[str, str], QbxmlVersion] = {
    ("CustomerAdd", "ExternalGUID"): QbxmlVersion(8, 0),
    ("ItemServiceAdd", "ExternalGUID"): QbxmlVersion(8, 0),
    ("ItemNonInventoryAdd", "ExternalGUID"): QbxmlVersion(8, 0),
    ("InvoiceAdd", "ExternalGUID"): QbxmlVersion(9, 0),
    ("ReceivePaymentAdd", "ExternalGUID"): QbxmlVersion(9, 0),
    ("JournalEntryAdd", "ExternalGUID"): QbxmlVersion(9, 0),
}


def supports(version: QbxmlVersion, request: str, element: str) -> bool:
    return version >= ELEMENT_MIN_VERSION.get((request, element), MINIMUM_VERSION)


def negotiate_version(
    supported: Iterable[str | QbxmlVersion] = (),
    *,
    major: int | str | None = None,
    minor: int | str | None = None,
) -> QbxmlVersion:
    """Choose the qbXML version to build.

    ``supported`` is ``HostRet/SupportedQBXMLVersion`` (see :func:`parse_hcp_response`); ``major``/``minor`` are
    the ``qbXMLMajorVers``/``qbXMLMinorVers`` of ``sendRequestXML`` (the highest version the desktop supports).
    Either source is enough; both are merged.
    """
    versions: set[QbxmlVersion] = set()
    for item in supported:
        if isinstance(item, QbxmlVersion):
            versions.add(item)
        else:
            try:
                versions.add(QbxmlVersion.parse(item))
            except ValueError:
                continue
    if major is not None and str(major).strip() != "":
        try:
            versions.add(QbxmlVersion(int(major), int(minor or 0)))
        except ValueError as exc:
            raise UnsupportedQbxmlVersion(f"unreadable qbXML version {major!r}.{minor!r}") from exc
    if not versions:
        raise UnsupportedQbxmlVersion("QuickBooks reported no supported qbXML version")
    best = max(versions)
    if best >= PREFERRED_VERSION:
        return PREFERRED_VERSION
    if best >= MINIMUM_VERSION:
        return best
    raise UnsupportedQbxmlVersion(
        f"QuickBooks supports qbXML up to {best}; qbsync needs at least {MINIMUM_VERSION} (QuickBooks 2008 or newer)"
    )


@dataclass(frozen=True)
class HostInfo:
    """What ``strHCPResponse`` tells us about the desktop and the open company file."""

    product_name: str | None = None
    major_version: str | None = None
    minor_version: str | None = None
    country: str | None = None
    supported_versions: tuple[QbxmlVersion, ...] = ()
    file_mode: str | None = None
    company_name: str | None = None
    #: DataExtRet entries of CompanyRet: (OwnerID, DataExtName) → DataExtValue.
    data_ext: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def file_id(self) -> str | None:
        """The ``FileID`` DataExt the Web Connector stamps on the company file (any OwnerID)."""
        return next((v for (_, name), v in self.data_ext.items() if name == "FileID"), None)

    @property
    def owner_id(self) -> str | None:
        """The OwnerID under which ``FileID`` was stored (the QWC file's OwnerID)."""
        return next((owner for (owner, name) in self.data_ext if name == "FileID"), None)


def parse_hcp_response(text: str | bytes) -> HostInfo:
    """Parse ``strHCPResponse`` (Host/Company/Preferences query responses).

    Accepts the un-escaped document (what lxml gives for the SOAP element text) and, leniently, a still
    XML-escaped string. The first ``sendRequestXML`` of a session carries it; later calls send ``""``.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    stripped = text.strip()
    if stripped.startswith("&lt;"):
        stripped = html.unescape(stripped)
    if not stripped:
        raise QbxmlParseError("empty strHCPResponse")
    root = parse_xml(stripped)

    def first(path: str) -> str | None:
        el = root.find(path)
        return el.text.strip() if el is not None and el.text is not None else None

    versions: list[QbxmlVersion] = []
    for el in root.iterfind(".//HostRet/SupportedQBXMLVersion"):
        try:
            versions.append(QbxmlVersion.parse(el.text or ""))
        except ValueError:
            continue
    data_ext: dict[tuple[str, str], str] = {}
    for ext in root.iterfind(".//CompanyRet/DataExtRet"):
        owner = (ext.findtext("OwnerID") or "").strip()
        name = (ext.findtext("DataExtName") or "").strip()
        if name:
            data_ext[(owner, name)] = (ext.findtext("DataExtValue") or "").strip()
    return HostInfo(
        product_name=first(".//HostRet/ProductName"),
        major_version=first(".//HostRet/MajorVersion"),
        minor_version=first(".//HostRet/MinorVersion"),
        country=first(".//HostRet/Country"),
        supported_versions=tuple(sorted(set(versions))),
        file_mode=first(".//HostRet/QBFileMode"),
        company_name=first(".//CompanyRet/CompanyName"),
        data_ext=data_ext,
    )
