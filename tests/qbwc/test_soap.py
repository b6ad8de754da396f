"""SOAP envelope parsing, rendering and dispatch — including hostile input and secret-free logging."""

from __future__ import annotations

import pytest
from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbwc import (
    CONTENT_TYPE,
    INTUIT_NS,
    OPERATIONS,
    SoapFault,
    dispatch,
    parse_request,
    render_fault,
    render_response,
)
from qbsync.qbwc.protocol import SOAP11_ENV_NS, SOAP12_ENV_NS, XsdType
from tests.qbwc import FakeService, all_params, body_payload, build_envelope, captured_logs, fault_of

CAP = 1024 * 1024
XML_DECL = b'<?xml version="1.0" encoding="utf-8"?>'
ENV_OPEN = (
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
    b"<soap:Body>"
)
ENV_CLOSE = b"</soap:Body></soap:Envelope>"


def qbwc_style(inner: bytes) -> bytes:
    """Exactly the byte layout the real Web Connector sends (default-namespaced operation element)."""
    return XML_DECL + ENV_OPEN + inner + ENV_CLOSE


def assert_client_fault(body: bytes, *fragments: str, max_body_bytes: int = CAP) -> str:
    with pytest.raises(SoapFault) as caught:
        parse_request(body, None, max_body_bytes=max_body_bytes)
    assert caught.value.faultcode == "soap:Client"
    for fragment in fragments:
        assert fragment.lower() in caught.value.faultstring.lower()
    service = FakeService()
    response = dispatch(body, None, service, max_body_bytes=max_body_bytes)
    assert response.status == 500
    assert response.content_type == CONTENT_TYPE
    assert fault_of(response.body) == ("soap:Client", caught.value.faultstring)
    assert service.calls == []
    return caught.value.faultstring


# ----------------------------------------------------------------------------------------------- parsing


def test_default_namespace_envelope_like_qbwc() -> None:
    body = qbwc_style(
        b'<authenticate xmlns="http://developer.intuit.com/"><strUserName>api</strUserName>'
        b"<strPassword>s3cret</strPassword></authenticate>"
    )
    call = parse_request(body, '"http://developer.intuit.com/authenticate"')
    assert call.operation == "authenticate"
    assert call.params == {"strUserName": "api", "strPassword": "s3cret"}


def test_prefixed_envelope() -> None:
    body = (
        b'<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:ns1="http://developer.intuit.com/"><SOAP-ENV:Header/><SOAP-ENV:Body>'
        b"<ns1:clientVersion><ns1:strVersion>2.3.0.215</ns1:strVersion></ns1:clientVersion>"
        b"</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    assert parse_request(body, None).params == {"strVersion": "2.3.0.215"}
    assert parse_request(build_envelope("getLastError", {"ticket": "t"}, prefix="q"), None).params == {"ticket": "t"}


def test_unqualified_parameter_children_are_tolerated() -> None:
    body = qbwc_style(
        b'<q:closeConnection xmlns:q="http://developer.intuit.com/"><ticket>abc</ticket></q:closeConnection>'
    )
    assert parse_request(body, None).params == {"ticket": "abc"}


@pytest.mark.parametrize(
    "action",
    [
        '"http://developer.intuit.com/getLastError"',
        "http://developer.intuit.com/getLastError",
        '  "http://developer.intuit.com/getLastError"  ',
        "getLastError",
        None,
        "",
        '""',
    ],
)
def test_soap_action_quoted_unquoted_or_absent(action: str | None) -> None:
    call = parse_request(build_envelope("getLastError", {"ticket": "t1"}), action)
    assert (call.operation, call.params) == ("getLastError", {"ticket": "t1"})


def test_soap_action_disagreeing_with_body_trusts_body() -> None:
    with captured_logs() as logs:
        call = parse_request(
            build_envelope("closeConnection", {"ticket": "t"}), '"http://developer.intuit.com/authenticate"'
        )
    assert call.operation == "closeConnection"
    assert "SOAPAction disagrees" in logs.getvalue()


def test_empty_and_missing_optional_elements_become_empty_strings() -> None:
    body = qbwc_style(
        b'<sendRequestXML xmlns="http://developer.intuit.com/"><ticket>t</ticket><strHCPResponse />'
        b"<qbXMLCountry>US</qbXMLCountry></sendRequestXML>"
    )
    assert parse_request(body, None).params == {
        "ticket": "t",
        "strHCPResponse": "",
        "strCompanyFileName": "",
        "qbXMLCountry": "US",
        "qbXMLMajorVers": "",
        "qbXMLMinorVers": "",
    }
    empty = qbwc_style(
        b'<receiveResponseXML xmlns="http://developer.intuit.com/"><hresult /><message/></receiveResponseXML>'
    )
    assert parse_request(empty, None).params == {"ticket": "", "response": "", "hresult": "", "message": ""}
    nil = qbwc_style(
        b'<getLastError xmlns="http://developer.intuit.com/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        b'<ticket xsi:nil="true"/></getLastError>'
    )
    assert parse_request(nil, None).params == {"ticket": ""}


def test_escaped_qbxml_and_whitespace_arrive_verbatim() -> None:
    qbxml = '<?xml version="1.0" ?>\r\n<QBXML><QBXMLMsgsRs><HostQueryRs statusCode="0"/></QBXMLMsgsRs></QBXML> '
    call = parse_request(build_envelope("receiveResponseXML", {"ticket": "t", "response": qbxml}), None)
    assert call.params["response"] == qbxml
    cdata = qbwc_style(
        b'<receiveResponseXML xmlns="http://developer.intuit.com/"><response><![CDATA[<QBXML/>]]></response>'
        b"</receiveResponseXML>"
    )
    assert parse_request(cdata, None).params["response"] == "<QBXML/>"


def test_qbxml_versions_are_accepted_as_any_text() -> None:
    params = all_params("sendRequestXML") | {"qbXMLMajorVers": "13", "qbXMLMinorVers": "x"}
    call = parse_request(build_envelope("sendRequestXML", params), None)
    assert (call.params["qbXMLMajorVers"], call.params["qbXMLMinorVers"]) == ("13", "x")


def test_unknown_children_headers_and_comments_are_ignored() -> None:
    body = (
        b'<?xml version="1.0"?><!-- hi --><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b'<soap:Header><x:Trace xmlns:x="urn:x">1</x:Trace></soap:Header><soap:Body>\n  <!-- c -->\n'
        b'<serverVersion xmlns="http://developer.intuit.com/"><strVersion>2.0</strVersion></serverVersion>'
        b"</soap:Body></soap:Envelope>"
    )
    assert parse_request(body, None).params == {}


def test_must_understand_header_is_refused() -> None:
    body = (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header>'
        b'<x:Sec xmlns:x="urn:x" soap:mustUnderstand="1"/></soap:Header><soap:Body>'
        b'<serverVersion xmlns="http://developer.intuit.com/"/></soap:Body></soap:Envelope>'
    )
    with pytest.raises(SoapFault) as caught:
        parse_request(body, None)
    assert caught.value.faultcode == "soap:MustUnderstand"


# ------------------------------------------------------------------------------------------ hostile input


def test_xxe_is_refused() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        + ENV_OPEN
        + b'<clientVersion xmlns="http://developer.intuit.com/"><strVersion>&xxe;</strVersion></clientVersion>'
        + ENV_CLOSE
    )
    assert_client_fault(body, "DOCTYPE")


def test_billion_laughs_is_refused() -> None:
    entities = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]>'.encode()
        + ENV_OPEN
        + b'<clientVersion xmlns="http://developer.intuit.com/"><strVersion>&lol9;</strVersion></clientVersion>'
        + ENV_CLOSE
    )
    assert_client_fault(body, "DOCTYPE")


def test_external_dtd_is_refused() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE soap:Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">'
        + ENV_OPEN
        + b'<serverVersion xmlns="http://developer.intuit.com/"/>'
        + ENV_CLOSE
    )
    assert_client_fault(body, "DOCTYPE")


def test_doctype_in_utf16_is_refused_after_parsing() -> None:
    """The byte pre-scan cannot see UTF-16; the parsed tree is checked for a DTD as well."""
    text = (
        '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE x [<!ENTITY e "boom">]>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        '<clientVersion xmlns="http://developer.intuit.com/"><strVersion>&e;</strVersion></clientVersion>'
        "</soap:Body></soap:Envelope>"
    )
    assert_client_fault(text.encode("utf-16"), "DOCTYPE")


def test_oversized_body_is_refused_before_parsing() -> None:
    cap = 10 * 1024 * 1024
    padding = b"A" * (20 * 1024 * 1024)
    body = qbwc_style(
        b'<receiveResponseXML xmlns="http://developer.intuit.com/"><response>'
        + padding
        + b"</response></receiveResponseXML>"
    )
    faultstring = assert_client_fault(body, "bytes", str(cap), max_body_bytes=cap)
    assert str(len(body)) in faultstring


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'><soap:Body>", "malformed"),
        (b"this is not xml", "malformed"),
        (b"<a><b></a>", "malformed"),
    ],
)
def test_malformed_xml_is_refused(body: bytes, fragment: str) -> None:
    assert_client_fault(body, fragment)


def test_non_soap_xml_is_refused() -> None:
    assert_client_fault(b'<?xml version="1.0" ?><QBXML><QBXMLMsgsRs/></QBXML>', "not a SOAP 1.1 envelope", "QBXML")
    no_body = b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header/></soap:Envelope>'
    assert_client_fault(no_body, "no Body")
    empty_body = (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        + b"<soap:Body> </soap:Body></soap:Envelope>"
    )
    assert_client_fault(empty_body, "Body is empty")


def test_soap12_envelope_is_refused() -> None:
    body = (
        f'<env:Envelope xmlns:env="{SOAP12_ENV_NS}"><env:Body>'
        '<serverVersion xmlns="http://developer.intuit.com/"/></env:Body></env:Envelope>'
    ).encode()
    assert_client_fault(body, "SOAP 1.2")


def test_wrong_namespace_is_refused() -> None:
    body = qbwc_style(b'<serverVersion xmlns="http://tempuri.org/"/>')
    assert_client_fault(body, "http://tempuri.org/", INTUIT_NS)
    assert_client_fault(qbwc_style(b"<serverVersion/>"), "no namespace")


def test_unknown_operation_is_refused() -> None:
    assert_client_fault(build_envelope("deleteEverything"), "unknown operation", "deleteEverything")


def test_element_children_and_duplicates_in_parameters_are_refused() -> None:
    nested = qbwc_style(
        b'<receiveResponseXML xmlns="http://developer.intuit.com/"><response><QBXML/></response></receiveResponseXML>'
    )
    assert_client_fault(nested, "response", "must be text")
    twice = qbwc_style(
        b'<getLastError xmlns="http://developer.intuit.com/"><ticket>a</ticket><ticket>b</ticket></getLastError>'
    )
    assert_client_fault(twice, "more than once")


# ---------------------------------------------------------------------------------------------- rendering


def test_render_authenticate_array_of_string_in_intuit_namespace() -> None:
    body = render_response("authenticate", ["tick<et>", "", None, "30"])
    assert body.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    payload = body_payload(body)
    assert payload.tag == f"{{{INTUIT_NS}}}authenticateResponse"
    assert payload.nsmap.get(None) == INTUIT_NS
    (result,) = payload
    assert result.tag == f"{{{INTUIT_NS}}}authenticateResult"
    assert [item.tag for item in result] == [f"{{{INTUIT_NS}}}string"] * 4
    assert [item.text or "" for item in result] == ["tick<et>", "", "", "30"]
    assert b"tick&lt;et&gt;" in body


def test_render_int_string_and_none_results() -> None:
    result = body_payload(render_response("receiveResponseXML", -101))[0]
    assert (result.tag, result.text) == (f"{{{INTUIT_NS}}}receiveResponseXMLResult", "-101")
    qbxml = '<?xml version="1.0"?>\r\n<?qbxml version="13.0"?><QBXML>&amp;</QBXML>'
    body = render_response("sendRequestXML", qbxml)
    assert b"&lt;QBXML&gt;&amp;amp;&lt;/QBXML&gt;" in body and b"&#13;" in body
    assert body_payload(body)[0].text == qbxml
    empty = body_payload(render_response("clientVersion", None))[0]
    assert (empty.tag, empty.text, len(empty)) == (f"{{{INTUIT_NS}}}clientVersionResult", None, 0)


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("receiveResponseXML", "100"),
        ("receiveResponseXML", None),
        ("receiveResponseXML", True),
        ("authenticate", "ticket"),
        ("getLastError", 3),
        ("closeConnection", "bad \x00 char"),
    ],
)
def test_render_rejects_results_of_the_wrong_type(operation: str, result: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        render_response(operation, result)


def test_every_operation_renders_its_declared_result_element() -> None:
    samples = {XsdType.STRING: "x", XsdType.INT: 7, XsdType.ARRAY_OF_STRING: ["a"]}
    for op in OPERATIONS.values():
        payload = body_payload(render_response(op.name, samples[op.result_type]))
        assert payload.tag == f"{{{INTUIT_NS}}}{op.name}Response"
        assert [child.tag for child in payload] == [f"{{{INTUIT_NS}}}{op.name}Result"]


def test_render_fault() -> None:
    body = render_fault(SoapFault.client("bad <input> & more"))
    root = etree.fromstring(body)
    assert root.nsmap["soap"] == SOAP11_ENV_NS
    assert fault_of(body) == ("soap:Client", "bad <input> & more")
    with pytest.raises(ValueError):
        SoapFault("Client", "no prefix")


# ----------------------------------------------------------------------------------------------- dispatch


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_dispatch_calls_the_snake_case_method_with_every_param(operation: str) -> None:
    op = OPERATIONS[operation]
    service = FakeService()
    response = dispatch(build_envelope(operation, all_params(operation)), op.soap_action, service, max_body_bytes=CAP)
    assert response.status == 200 and response.content_type == CONTENT_TYPE
    assert service.calls == [(operation, {p.py_name: f"{p.wire_name}-value" for p in op.params})]
    assert body_payload(response.body).tag == f"{{{INTUIT_NS}}}{operation}Response"


def test_dispatch_passes_deliberate_service_faults_through() -> None:
    service = FakeService({"getLastError": SoapFault.client("unknown ticket")})
    response = dispatch(build_envelope("getLastError", {"ticket": "zz"}), None, service, max_body_bytes=CAP)
    assert response.status == 500
    assert fault_of(response.body) == ("soap:Client", "unknown ticket")


def test_unexpected_service_error_is_a_generic_server_fault() -> None:
    service = FakeService({"closeConnection": RuntimeError("database password=hunter2 at /srv/app.py line 3")})
    with captured_logs() as logs:
        response = dispatch(build_envelope("closeConnection", {"ticket": "t"}), None, service, max_body_bytes=CAP)
    assert response.status == 500
    code, text = fault_of(response.body)
    assert code == "soap:Server"
    assert "hunter2" not in text and "RuntimeError" not in text and "Traceback" not in text
    assert b"hunter2" not in response.body and b"Traceback" not in response.body
    assert "Web Connector call failed" in logs.getvalue()


def test_bad_result_type_from_service_is_a_server_fault() -> None:
    service = FakeService({"receiveResponseXML": "fifty"})
    response = dispatch(build_envelope("receiveResponseXML", {"ticket": "t"}), None, service, max_body_bytes=CAP)
    assert response.status == 500
    assert fault_of(response.body)[0] == "soap:Server"


@pytest.mark.parametrize(
    "outcome",
    [
        ["ticket", "nvu"],
        RuntimeError("login failed for api with Pa55-w0rd!zz"),
        SoapFault.server("login failed with Pa55-w0rd!zz"),
    ],
    ids=["ok", "crash", "fault"],
)
def test_password_never_logged(outcome: object) -> None:
    password = "Pa55-w0rd!zz"
    body = build_envelope("authenticate", {"strUserName": "api", "strPassword": password})
    with captured_logs() as logs:
        dispatch(
            body,
            '"http://developer.intuit.com/authenticate"',
            FakeService({"authenticate": outcome}),
            max_body_bytes=CAP,
        )
        # Parse errors on an authenticate request must not quote it either.
        dispatch(body.replace(b"</soap:Envelope>", b""), None, FakeService(), max_body_bytes=CAP)
        dispatch(body, '"http://developer.intuit.com/closeConnection"', FakeService(), max_body_bytes=CAP)
    output = logs.getvalue()
    assert output.strip(), "expected log output"
    assert password not in output
    assert "Pa55" not in output
