"""A tiny scripted Web Connector SOAP service on 127.0.0.1 for testing the simulator (not the real qbsync one)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from lxml import etree

INTUIT_NS = "http://developer.intuit.com/"


@dataclass
class RecordedCall:
    op: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, str | None]
    present: list[str]  # child element names, in order


@dataclass
class ScriptedService:
    """Answers each operation from the fields below; records everything it receives."""

    server_version: str = "scripted-service 1.0"
    client_version: str = ""
    auth: list[str] = field(default_factory=lambda: ["TICKET-1", ""])
    requests: list[str] = field(default_factory=list)  # handed out by sendRequestXML in order ("" = none now)
    percents: list[int] = field(default_factory=list)  # explicit receiveResponseXML answers, else computed
    last_error: str = ""
    noop_count: int = 0  # getLastError answers "NoOp" this many times first
    connection_error_answers: list[str] = field(default_factory=lambda: ["done"])
    close_message: str = "OK"
    fault_ops: set[str] = field(default_factory=set)
    garbage_ops: set[str] = field(default_factory=set)  # answer with a non-XML body
    default_namespace_style: bool = False  # answer like a .NET service instead of the PHP capture style
    calls: list[RecordedCall] = field(default_factory=list)
    _handed_out: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def ops(self) -> list[str]:
        return [c.op for c in self.calls]

    def of(self, op: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.op == op]

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        root = etree.fromstring(body, parser=parser)
        body_el = root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
        assert body_el is not None
        op_el = body_el[0]
        op = etree.QName(op_el).localname
        params = {etree.QName(c).localname: c.text for c in op_el}
        with self._lock:
            self.calls.append(RecordedCall(op, headers, body, params, [etree.QName(c).localname for c in op_el]))
            if op in self.fault_ops:
                return 500, _fault(f"scripted fault in {op}")
            if op in self.garbage_ops:
                return 200, b"<html>oops</html"
            result = self._answer(op, params)
        return 200, self._envelope(op, result)

    def _answer(self, op: str, params: dict[str, str | None]) -> str | list[str]:
        if op == "serverVersion":
            return self.server_version
        if op == "clientVersion":
            return self.client_version
        if op == "authenticate":
            return self.auth
        if op == "sendRequestXML":
            if self._handed_out < len(self.requests):
                self._handed_out += 1
                return self.requests[self._handed_out - 1]
            return ""
        if op == "receiveResponseXML":
            if self.percents:
                return str(self.percents.pop(0))
            if params.get("hresult"):
                return "-101"
            work = [r for r in self.requests if r]
            done = sum(1 for r in self.requests[: self._handed_out] if r)
            return "100" if done >= len(work) else str(min(99, 100 * done // len(work)))
        if op == "getLastError":
            if self.noop_count > 0:
                self.noop_count -= 1
                return "NoOp"
            return self.last_error
        if op == "connectionError":
            return self.connection_error_answers.pop(0) if self.connection_error_answers else "done"
        if op == "closeConnection":
            return self.close_message
        raise AssertionError(f"unexpected op {op}")

    def _envelope(self, op: str, result: str | list[str]) -> bytes:
        p = "" if self.default_namespace_style else "ns1:"
        if isinstance(result, list):
            inner = "".join(f"<{p}string>{escape(s)}</{p}string>" for s in result)
        else:
            inner = escape(result)
        if self.default_namespace_style:
            payload = f'<{op}Response xmlns="{INTUIT_NS}"><{op}Result>{inner}</{op}Result></{op}Response>'
            return (
                '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
                f"<soap:Body>{payload}</soap:Body></soap:Envelope>"
            ).encode()
        return (
            '<?xml version="1.0" encoding="UTF-8"?> <SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"'
            f' xmlns:ns1="{INTUIT_NS}"><SOAP-ENV:Body><ns1:{op}Response><ns1:{op}Result>{inner}</ns1:{op}Result>'
            f"</ns1:{op}Response></SOAP-ENV:Body></SOAP-ENV:Envelope>"
        ).encode()


def _fault(message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<soap:Body><soap:Fault><faultcode>soap:Server</faultcode><faultstring>{escape(message)}</faultstring>"
        "</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()


@contextmanager
def serve(service: ScriptedService) -> Iterator[str]:
    """Serve ``service`` on 127.0.0.1 (ephemeral port) in a thread; yield the URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status, payload = service.handle(dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/qbwc"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
