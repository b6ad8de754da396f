"""qbXML version negotiation on real strHCPResponses, and company-file identity."""

from __future__ import annotations

import pytest
from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbxml import (
    MINIMUM_VERSION,
    QbxmlParseError,
    QbxmlVersion,
    UnsupportedQbxmlVersion,
    negotiate_version,
    parse_hcp_response,
)
from qbsync.qbxml.safexml import parse_xml
from tests.qbxml.conftest import reference_file


def _hcp_2008() -> tuple[str, etree._Element]:
    """The 2008 capture: strHCPResponse is XML-escaped inside the SOAP body; lxml un-escapes the element text."""
    envelope = reference_file("qbwc", "captures", "extracted_envelopes", "04_sendRequestXML.request.xml")
    root = parse_xml(envelope.read_bytes())
    ns = {"i": "http://developer.intuit.com/"}
    call = root.find(".//i:sendRequestXML", ns)
    assert call is not None
    return call.findtext("i:strHCPResponse", namespaces=ns) or "", call


def test_quickbooks_2014_negotiates_13_0() -> None:
    text = reference_file("qbwc", "captures", "qb2014", "strHCPResponse_QuickBooksPro2014.xml").read_text()
    host = parse_hcp_response(text)
    assert host.product_name == "QuickBooks Pro 2014"
    assert host.supported_versions[-1] == QbxmlVersion(13, 0)
    assert QbxmlVersion(1, 1) in host.supported_versions
    assert host.file_mode == "SingleUser"
    assert host.company_name == "myCompany"
    assert host.owner_id == "{512349B1-1111-2222-3333-000DE1813D20}"
    assert host.file_id == "{00000ee-1111-ffff-cccc-5ff123456047}"
    assert host.data_ext[("{512349B1-1111-2222-3333-000DE1813D20}", "AppLock")].startswith("LOCKED:")
    assert negotiate_version(host.supported_versions) == QbxmlVersion(13, 0)
    assert negotiate_version(host.supported_versions, major=13, minor=0) == QbxmlVersion(13, 0)


def test_quickbooks_2006_is_too_old() -> None:
    text, call = _hcp_2008()
    host = parse_hcp_response(text)
    assert host.product_name == "QuickBooks Pro 2006"
    assert host.supported_versions[-1] == QbxmlVersion(5, 0)
    assert host.file_id == "{ee032e95-47f7-2564-096f-2d4545fcb021}"
    assert host.owner_id == "{68b5925b-4347-4784-e58d-35a2d190962f}"
    major = call.findtext("{http://developer.intuit.com/}qbXMLMajorVers")
    minor = call.findtext("{http://developer.intuit.com/}qbXMLMinorVers")
    assert (major, minor) == ("5", "0")
    with pytest.raises(UnsupportedQbxmlVersion, match=r"up to 5\.0.*at least 7\.0"):
        negotiate_version(host.supported_versions, major=major, minor=minor)
    with pytest.raises(UnsupportedQbxmlVersion):
        negotiate_version(major=major, minor=minor)


def test_still_escaped_hcp_response_is_accepted() -> None:
    envelope = reference_file("qbwc", "captures", "extracted_envelopes", "04_sendRequestXML.request.xml")
    raw = envelope.read_text()
    escaped = raw.split("<strHCPResponse>")[1].split("</strHCPResponse>")[0]
    assert escaped.startswith("&lt;")
    assert parse_hcp_response(escaped).supported_versions[-1] == QbxmlVersion(5, 0)


@pytest.mark.parametrize(
    ("supported", "major", "minor", "expected"),
    [
        (["1.0", "7.0", "8.0", "12.0"], None, None, QbxmlVersion(12, 0)),
        (["7.0"], None, None, QbxmlVersion(7, 0)),
        ([], 16, 0, QbxmlVersion(13, 0)),
        (["13.0", "14.0", "15.0", "16.0"], None, None, QbxmlVersion(13, 0)),
        (["CA3.0", "11.0"], None, None, QbxmlVersion(11, 0)),
        ([], "10", "0", QbxmlVersion(10, 0)),
    ],
)
def test_negotiation(supported: list[str], major: int | str | None, minor: int | None, expected: QbxmlVersion) -> None:
    assert negotiate_version(supported, major=major, minor=minor) == expected


def test_too_old_and_empty() -> None:
    with pytest.raises(UnsupportedQbxmlVersion, match=r"at least 7\.0"):
        negotiate_version(["1.0", "2.0", "6.0"])
    with pytest.raises(UnsupportedQbxmlVersion, match="no supported"):
        negotiate_version([])
    assert QbxmlVersion(7, 0) == MINIMUM_VERSION
    assert str(QbxmlVersion(13, 0)) == "13.0"


def test_empty_hcp_response_is_an_error() -> None:
    with pytest.raises(QbxmlParseError):
        parse_hcp_response("   ")


def test_hcp_without_company_ret() -> None:
    host = parse_hcp_response(
        "<QBXML><QBXMLMsgsRs><HostQueryRs statusCode='0'><HostRet><SupportedQBXMLVersion>8.0</SupportedQBXMLVersion>"
        "<SupportedQBXMLVersion>garbage</SupportedQBXMLVersion></HostRet></HostQueryRs></QBXMLMsgsRs></QBXML>"
    )
    assert host.supported_versions == (QbxmlVersion(8, 0),)
    assert host.file_id is None and host.owner_id is None
