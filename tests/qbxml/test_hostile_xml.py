"""Hostile XML: XXE, entity expansion, external DTD are refused with QbxmlParseError — nothing expanded or read."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbsync.qbxml import QbxmlParseError, parse_hcp_response, parse_response, safe_parser
from qbsync.qbxml.safexml import parse_xml


def _xxe(target: Path) -> str:
    return (
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://{target}">]>'
        "<QBXML><QBXMLMsgsRs><CustomerAddRs statusCode='0' statusMessage='&e;'/></QBXMLMsgsRs></QBXML>"
    )


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">'
    '<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">'
    '<!ENTITY lol9 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">]>'
    "<QBXML><QBXMLMsgsRs><CustomerAddRs statusCode='0' statusMessage='&lol9;'/></QBXMLMsgsRs></QBXML>"
)


def test_xxe_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    for doc in (_xxe(secret), _xxe(Path("/etc/passwd"))):
        with pytest.raises(QbxmlParseError, match="DOCTYPE") as info:
            parse_response(doc)
        assert "TOP-SECRET" not in str(info.value)
        with pytest.raises(QbxmlParseError):
            parse_response(doc.encode())
        with pytest.raises(QbxmlParseError):
            parse_hcp_response(doc)


def test_billion_laughs_refused() -> None:
    with pytest.raises(QbxmlParseError, match="DOCTYPE"):
        parse_response(BILLION_LAUGHS)


def test_external_dtd_refused() -> None:
    doc = '<?xml version="1.0"?><!DOCTYPE QBXML SYSTEM "http://127.0.0.1:9/evil.dtd"><QBXML/>'
    with pytest.raises(QbxmlParseError):
        parse_xml(doc)
    with pytest.raises(QbxmlParseError):
        parse_xml('<!doctype QBXML PUBLIC "-//x//y" "file:///etc/passwd"><QBXML/>')


def test_utf16_doctype_is_caught_after_parsing(tmp_path: Path) -> None:
    """A UTF-16 document slips past the byte pre-check; the parser must still neither expand nor accept it."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doc = _xxe(secret).replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    with pytest.raises(QbxmlParseError) as info:
        parse_xml(doc.encode("utf-16"))
    assert "TOP-SECRET" not in str(info.value)


def test_parser_settings() -> None:
    parser = safe_parser()
    # lxml exposes no getters; check behaviour instead: an internal entity is not substituted.
    from lxml import etree  # type: ignore[import-untyped]

    root = etree.fromstring(b'<!DOCTYPE a [<!ENTITY e "EXPANDED">]><a>&e;</a>', parser=parser)
    assert "EXPANDED" not in etree.tostring(root).decode()


def test_oversized_document_refused() -> None:
    with pytest.raises(QbxmlParseError, match="bytes"):
        parse_xml("<QBXML>" + "x" * 100 + "</QBXML>", max_bytes=50)
