"""The HTTP face of the emulator: OAuth endpoints, the discovery document and the v3 API, served by werkzeug in a
background thread on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from infra.qbo_emulator import api, errors
from infra.qbo_emulator.errors import QboFault, iso_time
from infra.qbo_emulator.oauth import OAuthError, TokenStore
from infra.qbo_emulator.state import CompanyState, Faults, Limits, StoredResponse

JSON_TYPE = "application/json;charset=UTF-8"
XML_TYPE = "application/xml;charset=UTF-8"
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _tid() -> str:
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


class QboEmulator:
    """An in-process QuickBooks Online: OAuth 2.0 + a v3 API subset, with throttling and fault injection.

    ``with QboEmulator() as emu:`` starts it on a free port; point intuit-oauth at ``emu.discovery_url`` and API
    calls at ``f"{emu.api_base_url}/v3/company/{realm}/…"``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = "emulator-client",
        client_secret: str = "emulator-secret",
        access_token_ttl: int = 3600,
        refresh_token_ttl: int = 100 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.faults = Faults()
        self.limits = Limits()
        self.tokens = TokenStore(clock, access_token_ttl, refresh_token_ttl)
        self.token_requests: list[dict[str, Any]] = []
        self.revoked_tokens: set[str] = set()
        #: realm /authorize consents to when the request has no ``realmId`` parameter (default: first company).
        self.authorize_realm: str | None = None
        #: /authorize redirects with ``error=access_denied`` instead of a code.
        self.authorize_deny = False
        #: when set, /authorize and the code exchange only accept these redirect URIs.
        self.allowed_redirect_uris: set[str] | None = None
        self._companies: dict[str, CompanyState] = {}
        self._lock = threading.RLock()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._fail_toggle = 0

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> QboEmulator:
        if self._server is not None:
            return self
        self._server = make_server(self.host, self.port, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="qbo-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def __enter__(self) -> QboEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    @property
    def api_base_url(self) -> str:
        return self.base_url

    # ---- companies, limits, inspection --------------------------------------------------------------------
    def add_company(self, realm_id: str | None = None, name: str = "Emulated Co", country: str = "US") -> str:
        with self._lock:
            realm = realm_id or f"9341{secrets.randbelow(10**12):012d}"
            if realm not in self._companies:
                self._companies[realm] = CompanyState(realm, name, country, self.clock)
            return realm

    def company(self, realm_id: str) -> CompanyState:
        return self._companies[realm_id]

    @property
    def realms(self) -> list[str]:
        return list(self._companies)

    @property
    def throttled(self) -> int:
        """429s answered across all realms."""
        return sum(c.throttled for c in self._companies.values())

    def set_limits(
        self,
        per_minute: int | None = 500,
        per_second: int | None = 10,
        batch_per_minute: int | None = 40,
        concurrent: int | None = None,
    ) -> None:
        with self._lock:
            self.limits = Limits(per_minute, per_second, batch_per_minute, concurrent)

    def expire_access_tokens_now(self) -> int:
        """Every access token issued so far expires now (as an hour passing would); new ones are good. Returns
        how many were live."""
        with self._lock:
            now = self.clock()
            live = [grant for grant in self.tokens.access.values() if grant.expires_at > now]
            for grant in live:
                grant.expires_at = now
            return len(live)

    def issue_tokens(self, realm_id: str) -> dict[str, Any]:
        """Tokens for ``realm_id`` without the browser dance (a fresh connection)."""
        with self._lock:
            issued = self.tokens.new_connection(realm_id)
        issued.pop("_hard", None)
        return issued

    @property
    def refresh_grace_seconds(self) -> float:
        return self.tokens.refresh_grace_seconds

    @refresh_grace_seconds.setter
    def refresh_grace_seconds(self, value: float) -> None:
        self.tokens.refresh_grace_seconds = value

    # ---- admin hooks: what a user does in QuickBooks itself (tests, manual runs; HTTP on loopback only) ------
    def pay_invoice(
        self,
        realm_id: str,
        invoice_id: str,
        *,
        amount: str | None = None,
        date: str | None = None,
        reference: str | None = None,
    ) -> dict[str, Any]:
        """Receive a payment for an invoice in QuickBooks (default: its whole open balance); returns the Payment."""
        with self._lock:
            company = self._companies[realm_id]
            invoice = api.read(company, "Invoice", invoice_id)
            paying = amount if amount is not None else str(invoice.get("Balance", 0))
            body: dict[str, Any] = {
                "CustomerRef": {"value": invoice["CustomerRef"]["value"]},
                "TotalAmt": paying,
                "Line": [{"Amount": paying, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
            }
            if date:
                body["TxnDate"] = date
            if reference:
                body["PaymentRefNum"] = reference
            return api.create(company, "Payment", body)

    def delete_entity(self, realm_id: str, entity: str, entity_id: str) -> dict[str, Any]:
        """Delete a transaction in QuickBooks (CDC reports it as ``status: Deleted``)."""
        with self._lock:
            company = self._companies[realm_id]
            current = api.read(company, entity, entity_id)
            return api.delete(company, entity, {"Id": current["Id"], "SyncToken": current["SyncToken"]})

    def void_entity(self, realm_id: str, entity: str, entity_id: str) -> dict[str, Any]:
        with self._lock:
            company = self._companies[realm_id]
            current = api.read(company, entity, entity_id)
            return api.void(company, entity, {"Id": current["Id"], "SyncToken": current["SyncToken"]})

    def _admin(self, request: Request, parts: list[str]) -> Response:
        """``POST /admin/{realm}/invoices/{id}/pay`` ``{amount?, date?, reference?}``;
        ``POST /admin/{realm}/{invoices|payments}/{id}/delete`` and ``…/void``."""
        if request.remote_addr not in ("127.0.0.1", "::1"):
            return Response(b"Forbidden", status=403, content_type="text/plain")
        if request.method != "POST" or len(parts) != 4 or parts[1] not in ("invoices", "payments"):
            return Response(b"Not Found", status=404, content_type="text/plain")
        realm, plural, entity_id, action = parts
        entity = "Invoice" if plural == "invoices" else "Payment"
        try:
            body = json.loads(request.get_data() or b"{}")
            if realm not in self._companies:
                return self._json({"error": f"no company {realm}"}, 404)
            if action == "pay" and entity == "Invoice":
                result = self.pay_invoice(
                    realm, entity_id, amount=body.get("amount"), date=body.get("date"), reference=body.get("reference")
                )
            elif action == "delete":
                result = self.delete_entity(realm, entity, entity_id)
            elif action == "void":
                result = self.void_entity(realm, entity, entity_id)
            else:
                return Response(b"Not Found", status=404, content_type="text/plain")
        except QboFault as fault:
            return self._json(fault.fault_dict(), fault.status)
        except ValueError as exc:
            return self._json({"error": str(exc)}, 400)
        return self._json({entity: result})

    # ---- WSGI -------------------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as exc:  # never let a bug hang the client: answer a SystemFault
            fault = errors.system_failure(500)
            fault.detail = f"Emulator error: {exc!r}"
            response = Response(fault.json_body(self.clock()), status=500, content_type=JSON_TYPE)
        response.headers["intuit_tid"] = _tid()
        return response(environ, start_response)  # type: ignore[no-any-return]

    def _dispatch(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/v3/company/"):
            return self._api(request, path[len("/v3/company/") :].split("/"))
        if path.startswith("/admin/"):
            return self._admin(request, path[len("/admin/") :].split("/"))
        if self.faults.latency_seconds > 0:
            time.sleep(self.faults.latency_seconds)
        routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "/.well-known/openid-configuration"): self._discovery,
            ("GET", "/authorize"): self._authorize,
            ("POST", "/token"): self._token,
            ("POST", "/revoke"): self._revoke,
            ("GET", "/userinfo"): self._userinfo,
            ("GET", "/jwks"): lambda _r: self._json({"keys": []}),
        }
        handler = routes.get((request.method, path))
        if handler is None:
            return Response(b"Not Found", status=404, content_type="text/plain")
        return handler(request)

    def _json(self, body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type=JSON_TYPE)

    # ---- OAuth ------------------------------------------------------------------------------------------
    def _discovery(self, _request: Request) -> Response:
        base = self.base_url
        return self._json(
            {
                "issuer": f"{base}/op/v1",
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
                "revocation_endpoint": f"{base}/revoke",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "address", "phone"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
            }
        )

    def _authorize(self, request: Request) -> Response:
        args = request.args
        redirect_uri = args.get("redirect_uri")
        if args.get("client_id") != self.client_id:
            return Response(b"invalid_client: unknown client_id", status=400, content_type="text/plain")
        if not redirect_uri or (
            self.allowed_redirect_uris is not None and redirect_uri not in self.allowed_redirect_uris
        ):
            return Response(b"invalid_request: redirect_uri missing or not registered", status=400)
        if args.get("response_type") != "code":
            return Response(b"unsupported_response_type", status=400, content_type="text/plain")
        joiner = "&" if "?" in redirect_uri else "?"
        state = args.get("state", "")
        if self.authorize_deny:
            query = urlencode({"error": "access_denied", "state": state})
            return Response(status=302, headers={"Location": f"{redirect_uri}{joiner}{query}"})
        with self._lock:
            realm = args.get("realmId") or self.authorize_realm or next(iter(self._companies), None)
            realm = self.add_company(realm)
            code = self.tokens.issue_code(realm, self.client_id, redirect_uri)
        query = urlencode({"code": code, "state": state, "realmId": realm})
        return Response(status=302, headers={"Location": f"{redirect_uri}{joiner}{query}"})

    def _client_ok(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
        else:
            user, password = request.form.get("client_id", ""), request.form.get("client_secret", "")
        return secrets.compare_digest(user, self.client_id) and secrets.compare_digest(password, self.client_secret)

    def _token(self, request: Request) -> Response:
        form = request.form
        grant_type = form.get("grant_type", "")
        record: dict[str, Any] = {
            "grant_type": grant_type,
            "code": form.get("code"),
            "refresh_token": form.get("refresh_token"),
            "time": self.clock(),
            "hard_expiry_header": request.headers.get(HARD_EXPIRY_HEADER, "").lower() == "true",
        }
        try:
            if not self._client_ok(request):
                raise OAuthError(401, "invalid_client")
            with self._lock:
                if grant_type == "authorization_code":
                    redirect_uri = form.get("redirect_uri")
                    issued, connection = self.tokens.exchange_code(form.get("code", ""), self.client_id, redirect_uri)
                elif grant_type == "refresh_token":
                    if not form.get("refresh_token"):
                        raise OAuthError(400, "invalid_request", "refresh_token is required")
                    if self.faults.invalid_grant_next_refresh:
                        self.faults.invalid_grant_next_refresh = False
                        raise OAuthError(400, "invalid_grant", "Incorrect or invalid refresh token")
                    issued, connection = self.tokens.rotate(form["refresh_token"])
                else:
                    raise OAuthError(400, "unsupported_grant_type")
        except OAuthError as exc:
            record["outcome"] = exc.body["error"]
            self.token_requests.append(record)
            response = self._json(exc.body, exc.status)
            response.headers["Cache-Control"] = "no-cache, no-store"
            return response
        hard = issued.pop("_hard")
        if record["hard_expiry_header"]:
            issued["x_refresh_token_hard_expires_in"] = hard
        record.update(outcome="ok", issued_refresh_token=issued["refresh_token"], realm_id=connection.realm_id)
        self.token_requests.append(record)
        response = self._json(issued)
        response.headers["Cache-Control"] = "no-cache, no-store"
        return response

    def _revoke(self, request: Request) -> Response:
        if not self._client_ok(request):
            return self._json({"error": "invalid_client"}, 401)
        token = None
        try:
            token = json.loads(request.get_data() or b"{}").get("token")
        except (ValueError, AttributeError):
            token = request.form.get("token")
        if not token:
            return self._json({"error": "invalid_request"}, 400)
        with self._lock:
            if self.tokens.revoke(str(token)):
                self.revoked_tokens.add(str(token))
        return Response(b"", status=200)

    def _userinfo(self, request: Request) -> Response:
        realm, _reason = self._bearer_realm(request)
        if realm is None:
            return self._json({"error": "invalid_token"}, 401)
        return self._json({"sub": f"emulated-user-{realm}", "email": "owner@example.com", "emailVerified": True,
                           "givenName": "Emma", "familyName": "Ulator"})  # fmt: skip

    def _bearer_realm(self, request: Request) -> tuple[str | None, str]:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer ") or len(header) < 12:
            return None, "Authorization header missing or not a bearer token"
        if self.faults.expire_access_tokens:
            return None, "Token expired"
        with self._lock:
            return self.tokens.check_access(header[7:].strip())

    # ---- v3 API -----------------------------------------------------------------------------------------
    def _wants_xml(self, request: Request) -> bool:
        accept = request.headers.get("Accept", "").lower()
        return self.faults.xml_faults or ("xml" in accept and "json" not in accept)

    def _fault_response(self, request: Request, fault: QboFault) -> Response:
        xml = self._wants_xml(request) or (fault.code == "3001" and self.faults.throttle_xml)
        body = fault.xml_body(self.clock()) if xml else fault.json_body(self.clock())
        return Response(body, status=fault.status, content_type=XML_TYPE if xml else JSON_TYPE)

    def _envelope(self, key: str, value: Any) -> bytes:
        return json.dumps({key: value, "time": iso_time(self.clock(), millis=True)}).encode()

    def _api(self, request: Request, parts: list[str]) -> Response:
        realm = parts[0]
        rest = [p for p in parts[1:] if p]
        log: dict[str, Any] = {
            "time": self.clock(),
            "method": request.method,
            "path": request.path,
            "args": dict(request.args),
            "requestid": request.args.get("requestid"),
            "minorversion": request.args.get("minorversion"),
        }
        company = self._companies.get(realm)
        token_realm, reason = self._bearer_realm(request)
        fault: QboFault | None = None
        if token_realm is None:
            fault = errors.authentication_failed(reason)
        elif company is None or token_realm != realm:
            fault = errors.authorization_failed(f"The access token is not valid for company {realm}")
        if fault is not None or company is None:
            assert fault is not None
            if company is not None:
                with self._lock:
                    company.request_log.append({**log, "status": fault.status, "code": fault.code})
            return self._fault_response(request, fault)
        is_batch = bool(rest) and rest[0].lower() == "batch"
        with self._lock:
            injected = self.faults.fail_next.pop(0) if self.faults.fail_next else None
            if injected is not None:
                company.counts["injected_faults"] += 1
                company.request_log.append({**log, "status": injected, "code": "injected"})
        if injected is not None:
            return self._fault_response(
                request, errors.throttled() if injected == 429 else errors.system_failure(injected)
            )
        with self._lock:
            company.counts["requests"] += 1
            admitted = company.rate.admit(self.clock(), self.limits, is_batch=is_batch)
            concurrent = self.limits.concurrent
            if admitted and concurrent is not None and company.rate.in_flight >= concurrent:
                admitted = False
            if not admitted:
                company.counts["throttled"] += 1
                company.request_log.append({**log, "status": 429, "code": "3001"})
                return self._fault_response(request, errors.throttled())
            company.rate.in_flight += 1
        status = 500
        try:
            if self.faults.latency_seconds > 0:  # inside the in-flight window, so it also drives `concurrent`
                time.sleep(self.faults.latency_seconds)
            response = self._api_handle(request, company, rest, log)
            status = response.status_code
        finally:
            with self._lock:
                company.rate.in_flight -= 1
                company.request_log.append({**log, "status": status})
        return response

    def _api_handle(self, request: Request, company: CompanyState, rest: list[str], log: dict[str, Any]) -> Response:
        try:
            if not rest:
                raise errors.unsupported("No resource in the request path")
            head = rest[0].lower()
            log["resource"] = head
            if head == "query" and request.method in ("GET", "POST"):
                text = request.args.get("query") or request.get_data(as_text=True)
                with self._lock:
                    company.counts["queries"] += 1
                    result = api.query(company, text)
                return Response(self._envelope("QueryResponse", result), content_type=JSON_TYPE)
            if request.method == "GET" and head == "cdc":
                with self._lock:
                    company.counts["cdc"] += 1
                    result_cdc = api.cdc(
                        company, request.args.get("entities", ""), request.args.get("changedSince", "")
                    )
                return Response(self._envelope("CDCResponse", result_cdc), content_type=JSON_TYPE)
            if request.method == "POST" and head == "batch":
                return self._write(
                    request,
                    company,
                    lambda body: self._envelope("BatchItemResponse", api.batch(company, body)),
                    "batches",
                )
            entity = api.entity_name(head)
            log["entity"] = entity
            if request.method == "GET":
                if len(rest) < 2 and entity not in ("Preferences", "CompanyInfo"):
                    raise errors.unsupported(f"Unsupported request: GET {request.path} needs an entity id")
                entity_id = rest[1] if len(rest) > 1 else "1"  # /preferences has a single record
                with self._lock:
                    company.counts["reads"] += 1
                    obj = api.read(company, entity, entity_id)
                return Response(self._envelope(entity, obj), content_type=JSON_TYPE)
            if request.method == "POST" and len(rest) == 1:
                operation = request.args.get("operation")
                include = request.args.get("include", "")
                log["operation"] = operation or "create/update"
                return self._write(
                    request,
                    company,
                    lambda body: self._envelope(
                        entity, api.write(company, entity, body, operation=operation, include=include)
                    ),
                    "writes",
                )
            raise errors.unsupported(f"Unsupported request: {request.method} {request.path}")
        except QboFault as fault:
            log["code"] = fault.code
            return self._fault_response(request, fault)

    def _write(
        self, request: Request, company: CompanyState, perform: Callable[[Any], bytes], counter: str
    ) -> Response:
        """Run a write with requestid replay and fail-after-commit injection."""
        requestid = request.args.get("requestid")
        with self._lock:
            company.counts[counter] += 1
            if requestid and requestid in company.requestids:
                company.counts["replays"] += 1
                stored = company.requestids[requestid]
                return Response(stored.body, status=stored.status, content_type=stored.content_type)
            try:
                body = json.loads(request.get_data() or b"null")
            except ValueError:
                body = None
            try:
                if body is None:
                    raise errors.invalid_property("Failed to parse json object")
                payload = perform(body)
            except QboFault as fault:
                response = self._fault_response(request, fault)
                if requestid and self.faults.replay_errors:
                    company.requestids[requestid] = StoredResponse(
                        response.status_code, response.get_data(), response.content_type or JSON_TYPE
                    )
                return response
            if requestid:
                company.requestids[requestid] = StoredResponse(200, payload, JSON_TYPE)
            if self.faults.fail_after_commit_5xx > 0:
                self.faults.fail_after_commit_5xx -= 1
                status = (500, 503)[self._fail_toggle % 2]
                self._fail_toggle += 1
                company.counts["injected_5xx"] += 1
                return self._fault_response(request, errors.system_failure(status))
        return Response(payload, content_type=JSON_TYPE)
