"""Replay real QBWC 2.0.0.116 traffic (read from ../shared/reference, never copied) through the SOAP layer.

Each captured request must parse to the right call, and our answer to it must have the same shape — element
names and namespaces under ``soap:Body`` — as the response that real Web Connector accepted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbwc import INTUIT_NS, OPERATIONS, SoapFault, XsdType, dispatch, parse_request
from qbsync.qbwc.protocol import SOAP11_ENV_NS
from tests.qbwc import ENVELOPES, QBWC_REFERENCE, FakeService, body_payload, build_envelope, parse_response

CAP = 10 * 1024 * 1024
_NAME = re.compile(r"^(\d+)_([A-Za-z]+)\.request\.xml$")


def _requests() -> list[Path]:
    return sorted(ENVELOPES.glob("*.request.xml")) if ENVELOPES.is_dir() else []


REQUESTS = _requests()
if not REQUESTS:
    pytest.skip(f"no captured envelopes under {ENVELOPES}", allow_module_level=True)


def _operation_of(path: Path) -> str:
    match = _NAME.match(path.name)
    assert match, path.name
    return match.group(2)


def _structure(element: etree._Element, depth: int = 0) -> list[tuple[int, str]]:
    """Element names (Clark notation, so namespaces count, prefixes don't) of a subtree, in document order."""
    shape = [(depth, element.tag)]
    for child in element:
        if isinstance(child.tag, str):
            shape.extend(_structure(child, depth + 1))
    return shape


def _real_result(response_path: Path, operation: str) -> Any:
    """The value the real server returned, typed as our service would return it."""
    op = OPERATIONS[operation]
    result = body_payload(response_path.read_bytes())[0]
    if op.result_type is XsdType.INT:
        return int(result.text)
    if op.result_type is XsdType.ARRAY_OF_STRING:
        return [item.text or "" for item in result]
    return result.text or ""


def _http_capture(path: Path) -> tuple[dict[str, str], bytes]:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines()[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, body.strip()


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.name)
def test_captured_request_parses_to_its_operation(path: Path) -> None:
    operation = _operation_of(path)
    call = parse_request(path.read_bytes(), None, max_body_bytes=CAP)
    assert call.operation == operation
    assert set(call.params) == {p.wire_name for p in OPERATIONS[operation].params}


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.name)
def test_captured_request_with_its_http_headers(path: Path) -> None:
    http_path = path.with_name(path.name.replace(".request.xml", ".request.http.txt"))
    if not http_path.is_file():
        pytest.skip(f"no {http_path.name}")
    headers, body = _http_capture(http_path)
    assert headers["soapaction"].startswith('"')  # QBWC quotes it
    assert headers["content-type"] == "text/xml; charset=utf-8"
    assert body == path.read_bytes().strip()
    assert parse_request(body, headers["soapaction"], max_body_bytes=CAP).operation == _operation_of(path)


def _call(name: str) -> dict[str, str]:
    path = ENVELOPES / name
    if not path.is_file():
        pytest.skip(f"{name} not available")
    return parse_request(path.read_bytes(), None, max_body_bytes=CAP).params


def test_authenticate_capture() -> None:
    params = _call("03_authenticate.request.xml")
    assert params["strUserName"] == "api"
    assert params["strPassword"]


def test_client_and_server_version_captures() -> None:
    assert _call("01_serverVersion.request.xml") == {}
    assert _call("02_clientVersion.request.xml") == {"strVersion": "2.0.0.116"}


def test_first_send_request_xml_carries_the_hcp_response() -> None:
    params = _call("04_sendRequestXML.request.xml")
    hcp = params["strHCPResponse"]
    assert hcp.startswith("<?xml") and "HostQueryRs" in hcp and "&lt;" not in hcp
    root = etree.fromstring(re.sub(r"^<\?xml[^>]*\?>", "", hcp))  # the un-escaped text is real qbXML
    assert root.tag == "QBXML" and root.find("QBXMLMsgsRs/HostQueryRs") is not None
    assert (params["qbXMLCountry"], params["qbXMLMajorVers"], params["qbXMLMinorVers"]) == ("US", "5", "0")
    assert params["ticket"] and params["strCompanyFileName"]


def test_later_send_request_xml_has_an_empty_hcp_response() -> None:
    assert _call("12_sendRequestXML.request.xml")["strHCPResponse"] == ""


def test_receive_response_xml_capture() -> None:
    params = _call("11_receiveResponseXML.request.xml")
    assert "CustomerAddRs" in params["response"] and params["response"].lstrip().startswith("<?xml")
    assert (params["hresult"], params["message"]) == ("", "")


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.name)
def test_our_response_has_the_shape_of_the_accepted_one(path: Path) -> None:
    operation = _operation_of(path)
    response_path = path.with_name(path.name.replace(".request.xml", ".response.xml"))
    if not response_path.is_file():
        pytest.skip(f"no {response_path.name}")
    real_result = _real_result(response_path, operation)
    service = FakeService({operation: real_result})
    response = dispatch(path.read_bytes(), f'"{INTUIT_NS}{operation}"', service, max_body_bytes=CAP)
    assert response.status == 200
    assert response.content_type == "text/xml; charset=utf-8"
    assert len(service.calls) == 1 and service.calls[0][0] == operation

    ours = parse_response(response.body)
    real = parse_response(response_path.read_bytes())
    assert ours.tag == real.tag == f"{{{SOAP11_ENV_NS}}}Envelope"
    assert _structure(body_payload(response.body)) == _structure(body_payload(response_path.read_bytes()))
    # Same values too, once un-escaped: the fake service echoed the real result.
    ours_result = body_payload(response.body)[0]
    real_result_element = body_payload(response_path.read_bytes())[0]
    assert [e.text or "" for e in ours_result.iter()] == [e.text or "" for e in real_result_element.iter()]


# ------------------------------------------------------------------------------------------------ qb2014

QB2014 = QBWC_REFERENCE / "captures" / "qb2014"
QB2014_FILES = sorted(QB2014.glob("*.xml")) if QB2014.is_dir() else []


@pytest.mark.parametrize("path", QB2014_FILES, ids=lambda p: p.name)
def test_qb2014_files_are_raw_qbxml_not_soap(path: Path) -> None:
    """These are bare qbXML documents (what travels *inside* strHCPResponse/response), not SOAP envelopes.

    So the SOAP replay does not apply: they are refused as envelopes, and wrapped the way QBWC would send them
    they reach the service byte-for-byte.
    """
    text = path.read_text(encoding="utf-8")
    with pytest.raises(SoapFault) as caught:
        parse_request(path.read_bytes(), None, max_body_bytes=CAP)
    assert caught.value.faultcode == "soap:Client"
    assert "not a SOAP 1.1 envelope" in caught.value.faultstring

    if "HostQueryRs" in text:
        params = {"ticket": "t", "strHCPResponse": text, "qbXMLCountry": "US", "qbXMLMajorVers": "13"}
        call = parse_request(build_envelope("sendRequestXML", dict(params)), None, max_body_bytes=CAP)
        assert call.params["strHCPResponse"] == text
    else:
        service = FakeService({"receiveResponseXML": 100})
        body = build_envelope("receiveResponseXML", {"ticket": "t", "response": text, "hresult": None})
        response = dispatch(body, None, service, max_body_bytes=CAP)
        assert response.status == 200
        assert service.calls[0][1]["response"] == text
        assert body_payload(response.body)[0].text == "100"
