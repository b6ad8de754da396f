"""The Web Connector simulator speaks QBWC's SOAP dialect and follows its call order, against a scripted service."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from infra.fake_qbd import FakeCompany
from infra.wc_sim import Faults, UpdateResult, WebConnectorSimulator, build_envelope, count_requests, main
from tests.fake_qbd.soap_service import ScriptedService, serve

CAPTURES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "qbwc" / "captures" / "extracted_envelopes"
OWNER = "{68B5925B-4347-4784-E58D-35A2D190962F}"
FILE_ID = "{EE032E95-47F7-2564-096F-2D4545FCB021}"


def qbxml(*requests: str, attrs: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\r\n<?qbxml version="13.0"?>\r\n'
        f'<QBXML><QBXMLMsgsRq onError="stopOnError"{attrs}>{"".join(requests)}</QBXMLMsgsRq></QBXML>'
    )


ADD_ACME = qbxml(
    '<CustomerAddRq requestID="c1"><CustomerAdd><Name>Acme &amp; Sons</Name></CustomerAdd></CustomerAddRq>'
)
QUERY_TWO = qbxml(
    '<CustomerQueryRq requestID="q1"><FullName>Acme &amp; Sons</FullName></CustomerQueryRq>',
    '<ItemQueryRq requestID="q2"><MaxReturned>5</MaxReturned></ItemQueryRq>',
)


def simulate(
    service: ScriptedService, company: FakeCompany | None = None, **kw: Any
) -> tuple[UpdateResult, FakeCompany]:
    company = company or FakeCompany()
    with serve(service) as url:
        sim = WebConnectorSimulator(
            url, "api", "secret", company, noop_wait_seconds=0, timeout=5, owner_id=OWNER, file_id=FILE_ID, **kw
        )
        return sim.run_update(), company


def test_full_update_call_order_headers_and_payloads() -> None:
    service = ScriptedService(requests=[ADD_ACME, QUERY_TWO])
    result, company = simulate(service)
    assert service.ops == [
        "serverVersion",
        "clientVersion",
        "authenticate",
        "sendRequestXML",
        "receiveResponseXML",
        "sendRequestXML",
        "receiveResponseXML",
        "closeConnection",
    ]
    assert result.calls == service.ops
    assert result.ok and result.stop_reason == "done"
    assert result.percents == [50, 100] and result.round_trips == 2
    assert result.requests_per_round_trip == [1, 2]
    assert result.close_message == "OK" and result.server_version == "scripted-service 1.0"
    assert result.max_request_bytes > 1000 and result.max_response_bytes > 0
    for call in service.calls:
        assert call.headers["SOAPAction"] == f'"http://developer.intuit.com/{call.op}"'
        assert call.headers["Content-Type"] == "text/xml; charset=utf-8"
        assert call.headers["User-Agent"].startswith(
            "Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 2.0.50727."
        )
        assert call.body.startswith(b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope')
    assert service.of("clientVersion")[0].params == {"strVersion": "2.3.0.215"}
    assert service.of("authenticate")[0].params == {"strUserName": "api", "strPassword": "secret"}
    first, second = service.of("sendRequestXML")
    assert (
        first.present
        == second.present
        == [
            "ticket",
            "strHCPResponse",
            "strCompanyFileName",
            "qbXMLCountry",
            "qbXMLMajorVers",
            "qbXMLMinorVers",
        ]
    )
    assert first.params["ticket"] == second.params["ticket"] == "TICKET-1"
    hcp = first.params["strHCPResponse"] or ""
    assert "<HostQueryRs" in hcp and FILE_ID in hcp and OWNER in hcp
    assert second.params["strHCPResponse"] is None and b"<strHCPResponse />" in second.body
    assert first.params["strCompanyFileName"] == company.file_path
    assert (first.params["qbXMLCountry"], first.params["qbXMLMajorVers"], first.params["qbXMLMinorVers"]) == (
        "US",
        "13",
        "0",
    )
    r1, r2 = service.of("receiveResponseXML")
    assert r1.present == ["ticket", "response", "hresult", "message"]
    assert r1.params["hresult"] is None and r1.params["message"] is None
    assert 'requestID="c1"' in (r1.params["response"] or "")
    assert 'requestID="q2"' in (r2.params["response"] or "") and "Acme &amp; Sons" in (r2.params["response"] or "")
    assert company.find_customer("Acme & Sons") is not None
    assert service.of("closeConnection")[0].params == {"ticket": "TICKET-1"}


def _shape(xml: bytes) -> list[tuple[str | None, str, str | None, list[str]]]:
    """Element-by-element structure: (prefix, namespace-qualified tag, default ns, child names) — not the text."""
    root = etree.fromstring(xml.strip())
    out = []
    for el in root.iter():
        out.append((el.prefix, el.tag, el.nsmap.get(None), [c.tag for c in el]))
    return out


@pytest.mark.parametrize(
    ("capture", "op", "params"),
    [
        ("01_serverVersion", "serverVersion", []),
        ("02_clientVersion", "clientVersion", [("strVersion", "2.0.0.116")]),
        ("03_authenticate", "authenticate", [("strUserName", "api"), ("strPassword", "password")]),
        ("04_sendRequestXML", "sendRequestXML", None),
        ("11_receiveResponseXML", "receiveResponseXML", None),
        ("12_sendRequestXML", "sendRequestXML", None),
        ("13_getLastError", "getLastError", [("ticket", "ea0bf596246b623664adb465cc8662a2")]),
        ("14_closeConnection", "closeConnection", [("ticket", "ea0bf596246b623664adb465cc8662a2")]),
    ],
)
def test_envelopes_match_real_captures(capture: str, op: str, params: list[tuple[str, str]] | None) -> None:
    path = CAPTURES / f"{capture}.request.xml"
    if not path.exists():
        pytest.skip(f"reference captures not present at {path}")
    real_bytes = path.read_bytes()
    real = etree.fromstring(real_bytes)
    op_el = real.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]  # type: ignore[index]
    if params is None:  # replay the captured values through our builder
        params = [(etree.QName(c).localname, c.text or "") for c in op_el]
    ours = build_envelope(op, params).encode("utf-8")
    assert _shape(ours) == _shape(real_bytes)
    ours_op = etree.fromstring(ours).find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]  # type: ignore[index]
    assert [(etree.QName(c).localname, c.text) for c in ours_op] == [(etree.QName(c).localname, c.text) for c in op_el]
    if capture in ("01_serverVersion", "02_clientVersion", "03_authenticate", "12_sendRequestXML"):
        assert ours == real_bytes.strip()  # byte-identical where no whitespace/escaping quirks of the log intervene
    http = (CAPTURES / f"{capture}.request.http.txt").read_text()
    assert f'SOAPAction: "http://developer.intuit.com/{op}"' in http


@pytest.mark.parametrize("verdict", ["nvu", "none", "busy", "NONE"])
def test_authenticate_verdicts_stop_the_update(verdict: str) -> None:
    service = ScriptedService(auth=["T", verdict, "300", "60"], requests=[ADD_ACME])
    result, company = simulate(service)
    assert service.ops == ["serverVersion", "clientVersion", "authenticate", "closeConnection"]
    assert result.stop_reason == verdict.lower()
    assert result.postpone_seconds == 300 and result.min_run_every_seconds == 60
    assert result.ok == (verdict.lower() == "none")
    assert company.process_calls == 0


def test_empty_send_request_calls_get_last_error_then_close() -> None:
    service = ScriptedService(last_error="No registered functions for action: ItemServiceAdd")
    result, _ = simulate(service)
    assert service.ops[-3:] == ["sendRequestXML", "getLastError", "closeConnection"]
    assert result.last_error == "No registered functions for action: ItemServiceAdd"
    assert result.stop_reason == "no_more_requests" and result.hcp_sent == 1


def test_noop_waits_and_asks_again_without_resending_hcp() -> None:
    service = ScriptedService(requests=["", ADD_ACME], noop_count=1)
    result, company = simulate(service)
    assert service.ops[3:] == [
        "sendRequestXML",
        "getLastError",
        "sendRequestXML",
        "receiveResponseXML",
        "closeConnection",
    ]
    first, second = service.of("sendRequestXML")
    assert first.params["strHCPResponse"] and second.params["strHCPResponse"] is None
    assert result.ok and company.count("Customer") == 1


def test_noop_loop_is_bounded() -> None:
    service = ScriptedService(noop_count=50)
    result, _ = simulate(service, max_noops=3)
    assert service.ops.count("sendRequestXML") == 4 and service.ops[-1] == "closeConnection"
    assert result.last_error == "NoOp"


def test_negative_percent_goes_to_get_last_error_and_close() -> None:
    service = ScriptedService(requests=[ADD_ACME, QUERY_TWO], percents=[-1], last_error="server gave up")
    result, _ = simulate(service)
    assert service.ops[3:] == ["sendRequestXML", "receiveResponseXML", "getLastError", "closeConnection"]
    assert result.stop_reason == "server_error" and not result.ok
    assert result.last_error == "server gave up" and result.percents == [-1]


def test_dropped_response_means_the_server_never_hears_back() -> None:
    service = ScriptedService(requests=[ADD_ACME])
    result, company = simulate(service, faults=Faults(drop_response_after_processing=True))
    assert company.count("Customer") == 1  # QuickBooks did the work
    assert service.ops[-1] == "sendRequestXML" and "receiveResponseXML" not in service.ops
    assert result.stop_reason == "dropped" and not result.ok
    assert (result.qbwc_error or "").startswith("QBWC1042")


def test_hresult_fault_sends_hresult_and_empty_response() -> None:
    service = ScriptedService(requests=[ADD_ACME], last_error="QuickBooks could not parse our request")
    result, company = simulate(service, faults=Faults(hresult_parse_error=True))
    call = service.of("receiveResponseXML")[0]
    assert call.params["response"] is None and b"<response />" in call.body
    assert call.params["hresult"] == "0x80040400"
    assert call.params["message"] == "QuickBooks found an error when parsing the provided XML text stream."
    assert service.ops[-2:] == ["getLastError", "closeConnection"]  # scripted service answered -101
    assert company.count("Customer") == 0 and result.percents == [-101]


def test_malformed_qbxml_from_server_is_reported_as_hresult() -> None:
    service = ScriptedService(
        requests=[qbxml("<CustomerAddRq><CustomerAdd><Name>Ω</Name></CustomerAdd></CustomerAddRq>")]
    )
    simulate(service)
    assert service.of("receiveResponseXML")[0].params["hresult"] == "0x80040400"


@pytest.mark.parametrize(
    ("op", "code", "closes"),
    [
        ("authenticate", "QBWC1012", False),
        ("sendRequestXML", "QBWC1041", True),
        ("receiveResponseXML", "QBWC1042", True),
        ("closeConnection", "QBWC1044", False),
    ],
)
def test_soap_faults_stop_with_the_qbwc_error(op: str, code: str, closes: bool) -> None:
    service = ScriptedService(requests=[ADD_ACME], fault_ops={op})
    result, _ = simulate(service)
    assert (result.qbwc_error or "").startswith(code) and not result.ok
    assert service.ops.index(op) == len(service.ops) - (2 if closes else 1)
    if closes:
        assert service.ops[-1] == "closeConnection"


def test_non_xml_answer_and_optional_methods() -> None:
    service = ScriptedService(requests=[ADD_ACME], garbage_ops={"serverVersion"}, fault_ops={"clientVersion"})
    result, _ = simulate(service)
    assert result.ok and len(result.warnings) == 2
    service = ScriptedService(requests=[ADD_ACME], garbage_ops={"receiveResponseXML"})
    result, _ = simulate(service)
    assert "not well-formed" in (result.qbwc_error or "")


@pytest.mark.parametrize(("answer", "stops"), [("E:too old", True), ("O:2.3.0.215", True), ("W:please upgrade", False)])
def test_client_version_answers(answer: str, stops: bool) -> None:
    service = ScriptedService(client_version=answer, requests=[ADD_ACME])
    result, _ = simulate(service)
    assert ("authenticate" not in service.ops) == stops
    assert result.ok != stops


def test_default_namespace_service_style_works_too() -> None:
    service = ScriptedService(requests=[ADD_ACME], default_namespace_style=True)
    result, _ = simulate(service)
    assert result.ok and result.auth_result == ["TICKET-1", ""]


def test_connection_error_done_stops_and_retry_recovers() -> None:
    company = FakeCompany()
    company.fail_open = True
    service = ScriptedService(requests=[ADD_ACME])
    result, _ = simulate(service, company)
    assert service.ops[2:] == ["authenticate", "connectionError", "closeConnection"]
    call = service.of("connectionError")[0]
    assert call.present == ["ticket", "hresult", "message"]
    assert (call.params["hresult"], call.params["message"]) == ("0x80040408", "Could not start QuickBooks.")
    assert result.stop_reason == "connection_error"

    service = ScriptedService(requests=[ADD_ACME], connection_error_answers=[""])
    result, company = simulate(service, faults=Faults(connection_error=1))
    assert service.ops[2:5] == ["authenticate", "connectionError", "sendRequestXML"]
    assert result.ok and company.count("Customer") == 1

    company = FakeCompany()
    company.fail_open = True
    service = ScriptedService(connection_error_answers=["", "", "", ""])
    simulate(service, company)
    assert service.ops.count("connectionError") == 3  # first try + at most two retries


def test_other_company_file_is_a_connection_error() -> None:
    service = ScriptedService(auth=["T", r"C:\Other\other.qbw"])
    simulate(service)
    assert service.of("connectionError")[0].params["hresult"] == "0x8004040A"


def test_max_calls_bounds_a_server_that_never_finishes() -> None:
    service = ScriptedService(requests=[ADD_ACME.replace("Acme", f"Acme{i}") for i in range(100)], percents=[0] * 100)
    result, _ = simulate(service, max_calls=12)
    assert len(service.calls) == 12 and result.stop_reason == "limit"


def test_iterator_session_ends_with_the_update() -> None:
    company = FakeCompany()
    company.process(
        qbxml(*(f"<CustomerAddRq><CustomerAdd><Name>C{i}</Name></CustomerAdd></CustomerAddRq>" for i in range(5)))
    )
    start = qbxml('<CustomerQueryRq iterator="Start"><MaxReturned>2</MaxReturned></CustomerQueryRq>')
    service = ScriptedService(requests=[start])
    simulate(service, company)
    response = service.of("receiveResponseXML")[0].params["response"] or ""
    iterator_id = re.search(r'iteratorID="([^"]+)"', response).group(1)  # type: ignore[union-attr]
    cont = qbxml(
        f'<CustomerQueryRq iterator="Continue" iteratorID="{iterator_id}">'
        "<MaxReturned>2</MaxReturned></CustomerQueryRq>"
    )
    assert 'statusCode="3391"' in company.process(cont)


def test_unreachable_service_is_qbwc1012() -> None:
    with serve(ScriptedService()) as url:
        pass  # the port is closed again now
    sim = WebConnectorSimulator(url, "api", "pw", FakeCompany(), timeout=2)
    result = sim.run_update()
    assert result.calls == ["serverVersion"] and not result.ok
    assert (result.qbwc_error or "").startswith("QBWC1012")


def test_count_requests() -> None:
    assert count_requests(QUERY_TWO) == 2
    assert count_requests("not xml") == 0


def test_cli_persists_company_between_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "company.json"
    service = ScriptedService(requests=[ADD_ACME])
    with serve(service) as url:
        args = ["--url", url, "--user", "api", "--password", "pw", "--company-state", str(state), "--verbose"]
        assert main(args) == 0
        assert "Customer=1" in capsys.readouterr().out
        service.requests = [ADD_ACME, ADD_ACME]
        service.calls.clear()
        assert main(args) == 0
    out = capsys.readouterr().out
    assert "Customer=1" in out and "stop_reason: done" in out
    response = service.of("receiveResponseXML")[-1].params["response"] or ""
    assert 'statusCode="3100"' in response  # the second run saw the first run's customer
    assert FakeCompany.from_json(state.read_text()).count("Customer") == 1


def test_cli_exit_code_on_error(capsys: pytest.CaptureFixture[str]) -> None:
    service = ScriptedService(auth=["", "nvu"])
    with serve(service) as url:
        assert main(["--url", url, "--user", "x", "--password", "y"]) == 1
    assert "nvu" in capsys.readouterr().out
