"""A faithful QuickBooks Web Connector (QBWC) simulator: one scheduled update over SOAP 1.1 against any URL.

Wire format copies the real QBWC 2.0.0.116 captures in ``../shared/reference/qbwc/captures``: document/literal
envelopes, the operation element in the default namespace ``http://developer.intuit.com/``, unprefixed children,
qbXML sent as XML-escaped element text, quoted ``SOAPAction`` and the .NET 2.0 SOAP client User-Agent.

Call order (NOTES.md §1.2): serverVersion -> clientVersion -> authenticate -> [connectionError] ->
sendRequestXML/receiveResponseXML loop -> [getLastError] -> closeConnection. ``serverVersion`` and
``clientVersion`` are optional for a service: a SOAP fault there is recorded and the update goes on (a
transport failure stops it, as nothing else would work). Any other SOAP fault / HTTP error / non-XML answer
stops the update with the QBWC error code the real client shows, then closeConnection is still attempted when
a ticket exists. A dropped receiveResponseXML (fault injection) ends the update with no further calls.

CLI: ``python -m infra.wc_sim --url URL --user U --password P [--company-state FILE.json] [--verbose]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import requests
from lxml import etree

from infra.fake_qbd import FakeCompany, QBXMLProcessingError
from infra.fake_qbd.xmlio import HRESULT_OTHER_FILE_OPEN, OTHER_FILE_OPEN_MESSAGE, safe_parser

INTUIT_NS = "http://developer.intuit.com/"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
DEFAULT_USER_AGENT = "Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 2.0.50727.1433)"
ENVELOPE_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
    "<soap:Body>"
)
ENVELOPE_TAIL = "</soap:Body></soap:Envelope>"
# The QBWC error shown when the call to an operation fails (QBWC Programmer's Guide, appendix A).
QBWC_ERRORS = {
    "serverVersion": "QBWC1036",
    "clientVersion": "QBWC1036",
    "authenticate": "QBWC1012",
    "sendRequestXML": "QBWC1041",
    "receiveResponseXML": "QBWC1042",
    "getLastError": "QBWC1043",
    "closeConnection": "QBWC1044",
    "connectionError": "QBWC1045",
}
OK_STOPS = ("done", "no_more_requests", "none")


@dataclass
class Faults:
    """Fault injection. Round numbers are 1-based sendRequestXML round trips that carried qbXML."""

    drop_response_after_processing: bool = False
    drop_on_round: int = 1
    connection_error: int = 0  # how many OpenConnection attempts fail before one succeeds
    hresult_parse_error: bool = False
    hresult_on_round: int = 1
    slow_seconds: float = 0.0  # pause before every HTTP call


@dataclass
class UpdateResult:
    """What one scheduled update did (what QBWC would show in its status column and log)."""

    stop_reason: str = ""
    calls: list[str] = field(default_factory=list)
    round_trips: int = 0  # sendRequestXML calls that returned qbXML
    requests_per_round_trip: list[int] = field(default_factory=list)
    max_request_bytes: int = 0
    max_response_bytes: int = 0
    server_version: str | None = None
    client_version_result: str | None = None
    auth_result: list[str] = field(default_factory=list)
    ticket: str | None = None
    postpone_seconds: int | None = None
    min_run_every_seconds: int | None = None
    percents: list[int] = field(default_factory=list)
    last_error: str | None = None
    close_message: str | None = None
    qbwc_error: str | None = None
    warnings: list[str] = field(default_factory=list)
    connection_errors: list[str] = field(default_factory=list)
    hcp_sent: int = 0

    @property
    def ok(self) -> bool:
        return self.stop_reason in OK_STOPS and self.qbwc_error is None

    def summary(self) -> str:
        lines = [
            f"stop_reason: {self.stop_reason} ({'ok' if self.ok else 'error'})",
            f"calls: {' -> '.join(self.calls)}",
            f"round trips: {self.round_trips}, requests per round trip: {self.requests_per_round_trip}",
            f"percents: {self.percents}",
            f"largest SOAP request/response body: {self.max_request_bytes}/{self.max_response_bytes} bytes",
            f"auth result: {self.auth_result}",
        ]
        for label, value in (
            ("server version", self.server_version),
            ("last error", self.last_error),
            ("close message", self.close_message),
            ("QBWC error", self.qbwc_error),
            ("postpone seconds", self.postpone_seconds),
            ("min run every seconds", self.min_run_every_seconds),
        ):
            if value is not None:
                lines.append(f"{label}: {value}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


class CallFailed(Exception):
    """A SOAP call failed the way QBWC reports it (transport, HTTP status, fault or unparsable answer)."""

    def __init__(self, op: str, detail: str, *, transport: bool = False) -> None:
        super().__init__(f"{QBWC_ERRORS.get(op, 'QBWC1000')}: {op}() failed: {detail}")
        self.op = op
        self.transport = transport


class _Stop(Exception):
    """Ends the update loop (the reason is already on the result)."""


def build_envelope(op: str, params: Sequence[tuple[str, str | None]]) -> str:
    """A SOAP request exactly like QBWC's: empty values as ``<name />``, text XML-escaped."""
    if not params:
        return f'{ENVELOPE_HEAD}<{op} xmlns="{INTUIT_NS}" />{ENVELOPE_TAIL}'
    parts = []
    for name, value in params:
        if value is None or value == "":
            parts.append(f"<{name} />")
        else:
            parts.append(f"<{name}>{escape(value, {chr(13): '&#xD;'})}</{name}>")
    return f'{ENVELOPE_HEAD}<{op} xmlns="{INTUIT_NS}">{"".join(parts)}</{op}>{ENVELOPE_TAIL}'


def count_requests(qbxml: str) -> int:
    """How many ``*Rq`` elements a qbXML request message set holds (0 when it does not parse)."""
    try:
        body = qbxml.split("?>", 1)[1] if qbxml.lstrip().startswith("<?xml") else qbxml
        root = etree.fromstring(body.encode("utf-8"), parser=safe_parser())
    except (etree.XMLSyntaxError, ValueError, IndexError):
        return 0
    msgs = root.find("QBXMLMsgsRq")
    if msgs is None:
        return 0
    return sum(1 for el in msgs if isinstance(el.tag, str) and el.tag.endswith("Rq"))


class WebConnectorSimulator:
    """Runs scheduled updates against ``url`` for the application registered with ``username``/``password``."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        company: FakeCompany,
        *,
        version: str = "2.3.0.215",
        session: requests.Session | None = None,
        timeout: float = 30,
        max_calls: int = 10_000,
        max_seconds: float = 600,
        faults: Faults | None = None,
        owner_id: str | None = None,
        file_id: str | None = None,
        noop_wait_seconds: float = 5.0,
        max_noops: int = 3,
        max_connection_retries: int = 2,
        user_agent: str = DEFAULT_USER_AGENT,
        send_expect_100: bool = False,
    ) -> None:
        self.url = url
        self.username = username
        self.password = password
        self.company = company
        self.version = version
        self.session = session or requests.Session()
        self.timeout = timeout
        self.max_calls = max_calls
        self.max_seconds = max_seconds
        self.faults = faults or Faults()
        self.owner_id = owner_id
        self.file_id = file_id
        self.noop_wait_seconds = noop_wait_seconds
        self.max_noops = max_noops
        self.max_connection_retries = max_connection_retries
        self.user_agent = user_agent
        self.send_expect_100 = send_expect_100
        self._deadline = 0.0
        self._result = UpdateResult()

    # ------------------------------------------------------------------ transport

    def _call(self, op: str, params: list[tuple[str, str | None]]) -> etree._Element:
        """POST one operation; return the ``<op>Result`` element (in the Intuit namespace) or raise CallFailed."""
        result = self._result
        if len(result.calls) >= self.max_calls or time.monotonic() > self._deadline:
            result.stop_reason = "limit"
            result.qbwc_error = f"simulator limit reached before {op}() (max_calls={self.max_calls})"
            raise _Stop
        if self.faults.slow_seconds > 0:
            time.sleep(min(self.faults.slow_seconds, 30.0))
        body = build_envelope(op, params).encode("utf-8")
        headers = {
            "User-Agent": self.user_agent,
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{INTUIT_NS}{op}"',
            "Connection": "Keep-Alive",
        }
        if self.send_expect_100:
            headers["Expect"] = "100-continue"
        result.calls.append(op)
        result.max_request_bytes = max(result.max_request_bytes, len(body))
        try:
            resp = self.session.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise CallFailed(op, f"{type(exc).__name__}: {exc}", transport=True) from exc
        result.max_response_bytes = max(result.max_response_bytes, len(resp.content))
        if not resp.content:
            raise CallFailed(op, f"The request failed with an empty response (HTTP {resp.status_code}).")
        try:
            root = etree.fromstring(resp.content, parser=safe_parser())
        except etree.XMLSyntaxError as exc:
            raise CallFailed(op, f"Response is not well-formed XML. {exc}") from exc
        fault = root.find(f".//{{{SOAP_NS}}}Fault")
        if fault is not None:
            raise CallFailed(op, f"SOAP fault: {(fault.findtext('faultstring') or '').strip()}")
        if resp.status_code != 200:
            raise CallFailed(op, f"HTTP {resp.status_code}")
        found = next(iter(root.iter(f"{{{INTUIT_NS}}}{op}Result")), None)
        if found is None:
            if next(iter(root.iter(f"{{{INTUIT_NS}}}{op}Response")), None) is not None:
                # A response element with the result omitted = null string (nillable, minOccurs 0).
                return etree.Element(f"{{{INTUIT_NS}}}{op}Result")
            raise CallFailed(op, f"no {op}Result element in the {INTUIT_NS} namespace")
        return found

    def _call_text(self, op: str, params: list[tuple[str, str | None]]) -> str:
        return self._call(op, params).text or ""

    # ------------------------------------------------------------------ the update

    def run_update(self) -> UpdateResult:
        """Run one scheduled update and return what happened. Never raises for server misbehaviour."""
        self._result = UpdateResult()
        self._deadline = time.monotonic() + self.max_seconds
        try:
            self._run()
        except _Stop:
            pass
        except CallFailed as err:
            self._result.stop_reason = self._result.stop_reason or "error"
            self._result.qbwc_error = str(err)
            if self._result.ticket is not None and err.op != "closeConnection" and not err.transport:
                self._close()
        finally:
            self.company.end_session()
        return self._result

    def _run(self) -> None:
        result = self._result
        try:
            result.server_version = self._call_text("serverVersion", [])
        except CallFailed as err:
            if err.transport:  # what users see when the service is unreachable
                raise CallFailed("authenticate", str(err).split(": ", 2)[-1], transport=True) from err
            result.warnings.append(str(err))
        try:
            answer = self._call_text("clientVersion", [("strVersion", self.version)])
            result.client_version_result = answer
        except CallFailed as err:
            if err.transport:
                raise CallFailed("authenticate", str(err).split(": ", 2)[-1], transport=True) from err
            result.warnings.append(str(err))
            answer = ""
        if answer[:2] in ("E:", "O:"):
            result.stop_reason = "client_version_rejected"
            result.qbwc_error = f"QBWC1037: {answer[2:]}" if answer.startswith("E:") else f"Upgrade required: {answer}"
            return
        if answer.startswith("W:"):
            result.warnings.append(f"QBWC1037 warning: {answer[2:]}")

        auth = self._call("authenticate", [("strUserName", self.username), ("strPassword", self.password)])
        strings = [s.text or "" for s in auth.findall(f"{{{INTUIT_NS}}}string")]
        result.auth_result = strings
        if len(strings) < 2:
            raise CallFailed("authenticate", "Index was outside the bounds of the array.")
        result.ticket = strings[0]
        result.postpone_seconds = _int_or_none(strings[2]) if len(strings) > 2 else None
        result.min_run_every_seconds = _int_or_none(strings[3]) if len(strings) > 3 else None
        verdict = strings[1]
        if verdict.lower() in ("nvu", "none", "busy"):
            result.stop_reason = verdict.lower()
            if verdict.lower() == "nvu":
                result.qbwc_error = "QBWC1040: invalid user name or password (nvu)"
            # QBWC shows the message and, per the Programmer's Guide, still closes the connection.
            self._close()
            return
        company_file = verdict or self.company.file_path
        if not self._open_company(company_file):
            self._close()
            return
        self._exchange(company_file)
        self._close()

    def _open_company(self, company_file: str) -> bool:
        """OpenConnection/BeginSession; on failure ask connectionError (bounded retries). True when open."""
        result = self._result
        failures_left = self.faults.connection_error
        for attempt in range(self.max_connection_retries + 1):
            error: QBXMLProcessingError | None = None
            if failures_left > 0:
                failures_left -= 1
                error = QBXMLProcessingError("0x80040408", "Could not start QuickBooks.")
            elif company_file.lower() != self.company.file_path.lower():
                error = QBXMLProcessingError(HRESULT_OTHER_FILE_OPEN, OTHER_FILE_OPEN_MESSAGE)
            else:
                try:
                    self.company.open_connection()
                except QBXMLProcessingError as exc:
                    error = exc
            if error is None:
                return True
            result.connection_errors.append(f"{error.hresult}: {error.message}")
            answer = self._call_text(
                "connectionError",
                [("ticket", result.ticket), ("hresult", error.hresult), ("message", error.message)],
            )
            if answer.strip().lower() == "done" or attempt == self.max_connection_retries:
                result.stop_reason = "connection_error"
                result.last_error = f"{error.hresult}: {error.message}"
                return False
            company_file = answer or self.company.file_path
        return False  # pragma: no cover - loop always returns

    def _exchange(self, company_file: str) -> None:
        result = self._result
        major, _, minor = (self.company.supported_versions[-1] if self.company.supported_versions else "0.0").partition(
            "."
        )
        first = True
        noops = 0
        while True:
            hcp = self.company.host_company_preferences_response(self.owner_id, self.file_id) if first else ""
            result.hcp_sent += 1 if first else 0
            first = False
            request_xml = self._call_text(
                "sendRequestXML",
                [
                    ("ticket", result.ticket),
                    ("strHCPResponse", hcp),
                    ("strCompanyFileName", company_file),
                    ("qbXMLCountry", self.company.country),
                    ("qbXMLMajorVers", major),
                    ("qbXMLMinorVers", minor or "0"),
                ],
            )
            if request_xml.strip() == "" or request_xml.strip() == "NoOp":
                message = self._call_text("getLastError", [("ticket", result.ticket)])
                if (message == "NoOp" or request_xml.strip() == "NoOp") and noops < self.max_noops:
                    noops += 1
                    time.sleep(self.noop_wait_seconds)
                    continue
                result.last_error = message or None
                result.stop_reason = "no_more_requests"
                return
            result.round_trips += 1
            result.requests_per_round_trip.append(count_requests(request_xml))
            if self.faults.hresult_parse_error and result.round_trips == self.faults.hresult_on_round:
                self.company.parse_error_next = True
            response, hresult, message = "", "", ""
            try:
                response = self.company.process(request_xml)
            except QBXMLProcessingError as exc:
                hresult, message = exc.hresult, exc.message
            if self.faults.drop_response_after_processing and result.round_trips == self.faults.drop_on_round:
                result.stop_reason = "dropped"
                result.qbwc_error = (
                    "QBWC1042: ReceiveResponseXML failed: The underlying connection was closed (simulated drop)"
                )
                raise _Stop
            percent_text = self._call_text(
                "receiveResponseXML",
                [("ticket", result.ticket), ("response", response), ("hresult", hresult), ("message", message)],
            )
            try:
                percent = int(percent_text.strip())
            except ValueError as exc:
                raise CallFailed(
                    "receiveResponseXML", f"Input string was not in a correct format: {percent_text!r}"
                ) from exc
            result.percents.append(percent)
            if percent < 0:
                result.last_error = self._call_text("getLastError", [("ticket", result.ticket)]) or None
                result.stop_reason = "server_error"
                return
            if percent >= 100:
                result.stop_reason = "done"
                return

    def _close(self) -> None:
        try:
            self._result.close_message = self._call_text("closeConnection", [("ticket", self._result.ticket)])
        except CallFailed as err:
            self._result.qbwc_error = self._result.qbwc_error or str(err)
        except _Stop:
            pass


def _int_or_none(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Run one scheduled update against URL with a fake company; print a summary. 0 = success, 1 = errors."""
    parser = argparse.ArgumentParser(prog="wc-sim", description="QuickBooks Web Connector simulator")
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--company-state", type=Path, help="JSON file; loaded when present and saved after the run")
    parser.add_argument("--owner-id", default=None, help="QWC OwnerID (stamps and reports the FileID DataExt)")
    parser.add_argument("--file-id", default=None, help="QWC FileID")
    parser.add_argument("--version", default="2.3.0.215", help="QBWC version sent to clientVersion")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--max-calls", type=int, default=10_000)
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--validate-xsd",
        action="store_true",
        help="check every qbXML request against Intuit's 13.0 XSD (QBXML_XSD_DIR); invalid ones fail the run",
    )
    args = parser.parse_args(argv)

    state: Path | None = args.company_state
    company = FakeCompany.from_json(state.read_text("utf-8")) if state and state.exists() else FakeCompany()
    sim = WebConnectorSimulator(
        args.url,
        args.user,
        args.password,
        company,
        version=args.version,
        timeout=args.timeout,
        max_calls=args.max_calls,
        owner_id=args.owner_id,
        file_id=args.file_id,
    )
    invalid: list[str] = []
    if args.validate_xsd:
        from qbsync.qbxml.xsd import validation_errors

        process = company.process

        def validated(request_xml: str) -> str:
            invalid.extend(validation_errors(request_xml, "130"))
            return process(request_xml)

        company.process = validated  # type: ignore[method-assign,assignment]
    result = sim.run_update()
    if state:
        state.write_text(company.to_json(), "utf-8")
    print(result.summary())
    if args.validate_xsd:
        print(f"xsd: {'all requests valid' if not invalid else f'{len(invalid)} error(s): ' + '; '.join(invalid[:5])}")
    counts: dict[str, Any] = {
        k: company.count(k)
        for k in (
            "Customer",
            "Item",
            "Invoice",
            "ReceivePayment",
            "JournalEntry",
            "TimeTracking",
            "Bill",
            "CreditCardCharge",
            "PurchaseOrder",
        )
    }
    print("company: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    if args.verbose:
        for i, entry in enumerate(company.request_log, 1):
            print(f"  process #{i}: {entry.outcome} {entry.requests}")
    return 0 if result.ok and not invalid else 1


if __name__ == "__main__":
    sys.exit(main())
