"""The admin console's HTTP side: sign-in, pages, form actions and static assets, on the API's Chalice app.

Every page and every action works through :meth:`qbsync.api.routing.RestApi.invoke` with the session's tenant:
the console can see and change exactly what the public REST API lets that tenant see and change, with the same
validation. Pages are rendered by Jinja2 with autoescaping on (names from QuickBooks included); no inline script or
style exists, so the Content-Security-Policy allows ``'self'`` only. State changes are POSTed forms carrying the
session's CSRF token, from this origin (``Origin`` checked), answered by a redirect (post/redirect/get).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from chalice.app import Response
from pydantic import BaseModel

from qbsync.connectors import ALL_TRANSFERS
from qbsync.console.sessions import SignedIn
from qbsync.errors import NotFound, QbsyncError, ValidationFailed

if TYPE_CHECKING:
    from jinja2 import Environment

    from qbsync.api.routing import RestApi, ViewContext

HERE = Path(__file__).parent
COOKIE = "qbsync_console"
SECURE_COOKIE = "__Host-qbsync_console"  # https: the __Host- prefix pins it to this host, path / and Secure
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PAGES: list[tuple[str, str]] = [
    ("settings", "Settings"),
    ("quickbooks", "QuickBooks Online"),
    ("connectors", "Web Connector"),
    ("issues", "Match issues"),
    ("invoices", "Invoices"),
    ("transfers", "Transfer history"),
    ("mappings", "Mappings"),
    ("sync", "Sync data"),
]
PAGE_TITLES = dict(PAGES)
# Fixed success messages (a redirect names one by code; nothing a link can inject is ever shown).
DONE = {
    "settings": "Settings saved.",
    "qbo-tested": "QuickBooks Online answered: the connection works.",
    "qbo-disconnected": "QuickBooks Online is disconnected; the tokens were revoked.",
    "connector-created": "Connector created. Download its QWC file and add it to the Web Connector.",
    "connector-unlocked": "Connector unlocked.",
    "connector-updated": "Connector updated.",
    "resolved": "Match issue resolved: the record is linked and whatever waited for it is on its way.",
    "resynced": "Sent again.",
    "mappings": "Mappings saved.",
}
INVOICE_STATES = ("pending", "synced", "waiting", "blocked", "failed")
RECORD_KINDS = ("customers", "items", "invoices", "payments")
MATCH_KINDS = ("customers", "items")
SETTINGS_TEXT = (
    "default_terms",
    "ar_account",
    "ap_account",
    "income_account",
    "expense_account",
    "journal_debit_account",
    "discount_item",
    "item_name_template",
)
SETTINGS_FLAGS = (
    "create_invoices",
    "auto_create_customers",
    "auto_create_items",
    "use_classes",
    "allow_class_override",
)
TAX_TEXT = ("default_tax_code", "default_tax_item", "exempt_tax_code")
TAX_FLAGS = ("enabled", "customer_override")
_ASSET = re.compile(r"^([a-z]+)\.([0-9a-f]{12})\.(css|js)$")
ASSET_TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}


@dataclass
class Page:
    """What a page template receives besides the common frame."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # field → message, from a refused form
    error: str | None = None  # a refused action's message
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)  # a refused POST: which tab to show again


@cache
def _asset_version(name: str) -> str:
    return hashlib.sha256((HERE / "static" / name).read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    stem, ext = name.rsplit(".", 1)
    return f"/console/static/{stem}.{_asset_version(name)}.{ext}"


@cache
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(asset_url=asset_url, pages=PAGES)
    return env


class Console:
    """Registers the console's routes on ``api`` (one Chalice app serves the API and the console)."""

    def __init__(self, api: RestApi) -> None:
        self.api = api
        self.actions: dict[str, Callable[[ViewContext, SignedIn, dict[str, list[str]]], Response]] = {
            "settings": self._save_settings,
            "qbo-connect": self._qbo_connect,
            "qbo-test": self._qbo_test,
            "qbo-disconnect": self._qbo_disconnect,
            "connector-create": self._connector_create,
            "connector-unlock": self._connector_unlock,
            "connector-update": self._connector_update,
            "issue-resolve": self._issue_resolve,
            "record-resync": self._record_resync,
            "sync-start": self._sync_start,
            "mappings": self._save_mappings,
        }
        self._register()

    # --- routes ----------------------------------------------------------------------------------------------

    def _register(self) -> None:
        route = self.api.route
        common: dict[str, Any] = {"auth": "none", "tag": "console", "document": False}
        html = {**common, "response_media_type": "text/html"}

        @route("/console", "GET", summary="Admin console", **html)
        def console_home(ctx: ViewContext) -> Response:
            return _redirect(ctx, "/console/settings")

        @route("/console/login", "GET", summary="Console sign-in", **html)
        def console_login_form(ctx: ViewContext) -> Response:
            return self._login_page(ctx)

        @route("/console/login", "POST", summary="Exchange an API key for a session", body="raw", **html)
        def console_login(ctx: ViewContext) -> Response:
            return self._login(ctx)

        @route("/console/logout", "POST", summary="End the console session", body="raw", **html)
        def console_logout(ctx: ViewContext) -> Response:
            return self._logout(ctx)

        @route("/console/actions/{action}", "POST", summary="A console form", body="raw", **html)
        def console_action(ctx: ViewContext, action: str) -> Response:
            return self._action(ctx, action)

        @route("/console/static/{asset}", "GET", summary="Console assets (versioned, immutable)", **common)
        def console_static(ctx: ViewContext, asset: str) -> Response:
            return _static(asset)

        @route("/console/connectors/{connector_id}/qwc", "GET", summary="Download a connector's QWC file", **common)
        def console_qwc(ctx: ViewContext, connector_id: str) -> Response:
            signed = self._session(ctx)
            if signed is None:
                return _redirect(ctx, "/console/login")
            try:
                result: Response = self._call(ctx, signed, "download_qwc", connector_id=connector_id)
            except QbsyncError as error:
                return self._render(ctx, signed, Page("connectors", error=error.detail, status=error.status))
            return result

        for name, title in PAGES:
            self._register_page(name, title, html)

    def _register_page(self, name: str, title: str, options: dict[str, Any]) -> None:
        def view(ctx: ViewContext) -> Response:
            signed = self._session(ctx)
            if signed is None:
                return _redirect(ctx, "/console/login")
            return self._render(ctx, signed, Page(name))

        view.__name__ = f"console_{name}"
        self.api.route(f"/console/{name}", "GET", summary=f"Console: {title}", **options)(view)

    # --- sign-in ---------------------------------------------------------------------------------------------

    def _login_page(self, ctx: ViewContext, *, error: str | None = None, status: int = 200) -> Response:
        if error is None and self._session(ctx) is not None:
            return _redirect(ctx, "/console/settings")
        body = _environment().get_template("login.html").render(error=error, title="Sign in", base=_base(ctx))
        return _html(body, status)

    def _login(self, ctx: ViewContext) -> Response:
        if not _same_origin(ctx):
            return self._login_page(ctx, error="The form did not come from this console.", status=403)
        form = _form(ctx)
        api_key = _one(form, "api_key")
        if not api_key:
            return self._login_page(ctx, error="Paste the tenant's API key.", status=422)
        try:
            token, _ = ctx.services.console.sign_in(api_key)
        except QbsyncError as error:
            return self._login_page(ctx, error=error.detail, status=error.status)
        response = _redirect(ctx, "/console/settings")
        minutes = ctx.services.settings.console_session_minutes
        response.headers["Set-Cookie"] = _cookie(ctx, token, max_age=minutes * 60)
        return response

    def _logout(self, ctx: ViewContext) -> Response:
        signed = self._session(ctx)
        if signed is not None:
            if not _same_origin(ctx) or not signed.session.csrf_token or not _csrf_ok(ctx, signed, _form(ctx)):
                return self._render(ctx, signed, Page("settings", error="The form expired; try again.", status=403))
            ctx.services.console.sign_out(_cookie_token(ctx))
        response = _redirect(ctx, "/console/login")
        response.headers["Set-Cookie"] = _cookie(ctx, "", max_age=0)
        return response

    def _session(self, ctx: ViewContext) -> SignedIn | None:
        token = _cookie_token(ctx)
        if not token:
            return None
        try:
            return ctx.services.console.resolve(token)
        except QbsyncError:
            return None

    # --- actions ---------------------------------------------------------------------------------------------

    def _action(self, ctx: ViewContext, action: str) -> Response:
        signed = self._session(ctx)
        if signed is None:
            return _redirect(ctx, "/console/login")
        handler = self.actions.get(action)
        if handler is None:
            return self._render(ctx, signed, Page("settings", error="No such action.", status=404))
        form = _form(ctx)
        page = _one(form, "page") if _one(form, "page") in PAGE_TITLES else "settings"
        if not _same_origin(ctx) or not _csrf_ok(ctx, signed, form):
            message = "The form expired or did not come from this console; nothing was changed. Try again."
            return self._render(ctx, signed, Page(page, error=message, status=403))
        try:
            return handler(ctx, signed, form)
        except ValidationFailed as error:
            errors = {e.field: e.message for e in error.errors}
            again = Page(page, errors=errors, error=error.detail, status=error.status, query=_tab(form))
            return self._render(ctx, signed, again)
        except QbsyncError as error:
            return self._render(ctx, signed, Page(page, error=error.detail, status=error.status, query=_tab(form)))

    def _save_settings(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        patch: dict[str, Any] = {
            "mode": _one(form, "mode"),
            "summarized_period": _one(form, "summarized_period"),
            "customer_address": _one(form, "customer_address"),
            "connector_lockout_attempts": _int_or_text(_one(form, "connector_lockout_attempts")),
        }
        patch.update({name: _one(form, name) or None for name in SETTINGS_TEXT})
        patch.update({name: _one(form, name) == "on" for name in SETTINGS_FLAGS})
        tax: dict[str, Any] = {name: _one(form, f"sales_tax.{name}") or None for name in TAX_TEXT}
        tax.update({name: _one(form, f"sales_tax.{name}") == "on" for name in TAX_FLAGS})
        patch["sales_tax"] = tax
        self._call(ctx, signed, "patch_settings", body=patch)
        return _redirect(ctx, "/console/settings", done="settings")

    def _qbo_connect(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        started = self._call(ctx, signed, "qbo_connect")
        url = started.authorization_url
        if urlsplit(url).scheme not in ("https", "http"):
            raise QbsyncError("QuickBooks answered with an unusable authorization URL.")
        # A page that moves on by script (and by a link without it): CSP form-action would refuse a redirect of
        # the form submission to Intuit's origin.
        body = _environment().get_template("redirect.html").render(title="Opening QuickBooks", url=url, base=_base(ctx))
        return _html(body)

    def _qbo_test(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        result = self._call(ctx, signed, "qbo_test")
        if not result.ok:
            raise QbsyncError("QuickBooks Online did not answer; see the status below.")
        return _redirect(ctx, "/console/quickbooks", done="qbo-tested")

    def _qbo_disconnect(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        self._call(ctx, signed, "qbo_disconnect")
        return _redirect(ctx, "/console/quickbooks", done="qbo-disconnected")

    def _connector_create(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        body = {
            "name": _one(form, "name"),
            "username": _one(form, "username"),
            "password": _one(form, "password"),
            "run_every_minutes": _int_or_text(_one(form, "run_every_minutes") or "15"),
            "enabled_transfers": form.get("enabled_transfers", []),
        }
        self._call(ctx, signed, "create_connector", body=body)
        return _redirect(ctx, "/console/connectors", done="connector-created")

    def _connector_unlock(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        self._call(ctx, signed, "unlock_connector", connector_id=_one(form, "connector_id"))
        return _redirect(ctx, "/console/connectors", done="connector-unlocked")

    def _connector_update(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        body: dict[str, Any] = {"enabled_transfers": form.get("enabled_transfers", [])}
        if _one(form, "enabled") in ("true", "false"):
            body = {"enabled": _one(form, "enabled") == "true"}
        self._call(ctx, signed, "update_connector", body=body, connector_id=_one(form, "connector_id"))
        return _redirect(ctx, "/console/connectors", done="connector-updated")

    def _issue_resolve(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        issue_id = _one(form, "issue_id")
        picked = _one(form, "quickbooks_id")
        if not picked:
            raise ValidationFailed([], "Pick the QuickBooks record this one is.")
        self._call(ctx, signed, "resolve_match_issue", body={"quickbooks_id": picked}, issue_id=issue_id)
        kind = issue_id.partition(":")[0]
        return _redirect(ctx, "/console/issues", done="resolved", kind=kind if kind in MATCH_KINDS else "customers")

    def _record_resync(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        kind = _one(form, "kind")
        self._call(ctx, signed, "resync", kind=kind, record_id=_one(form, "record_id"))
        page = _one(form, "page") if _one(form, "page") in ("issues", "invoices") else "invoices"
        extra = {"kind": kind} if page == "issues" and kind in MATCH_KINDS else {}
        return _redirect(ctx, f"/console/{page}", done="resynced", **extra)

    def _sync_start(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        kinds = form.get("kinds", [])
        if not kinds:
            raise ValidationFailed([], "Pick at least one kind of record to send.")
        started = self._call(ctx, signed, "start_sync", body={"kinds": kinds})
        return _redirect(ctx, "/console/sync", id=started.sync_id)

    def _save_mappings(self, ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> Response:
        """The whole table of one kind, replaced at once (``PUT /v1/mappings/{kind}``): rows are aligned lists of
        ``key``, ``name`` and ``type``; a ticked ``remove`` drops its row, a row left blank is no row."""
        kind = _one(form, "kind")
        keys, names, types = form.get("key", []), form.get("name", []), form.get("type", [])
        removed = set(form.get("remove", []))
        entries: dict[str, dict[str, str]] = {}
        for index, (key, name) in enumerate(zip(keys, names, strict=False)):
            key, name = key.strip(), name.strip()
            if str(index) in removed or (not key and not name):
                continue
            target = {"name": name}
            chosen = types[index].strip() if index < len(types) else ""
            if chosen:
                target["type"] = chosen
            entries[key] = target
        self._call(ctx, signed, "put_mappings", body={"entries": entries}, kind=kind)
        return _redirect(ctx, "/console/mappings", done="mappings", kind=kind)

    # --- pages -----------------------------------------------------------------------------------------------

    def _call(self, ctx: ViewContext, signed: SignedIn, name: str, **kwargs: Any) -> Any:
        return self.api.invoke(
            name,
            tenant=signed.tenant,
            services=ctx.services,
            public_base_url=ctx.request.public_base_url,
            request_id=ctx.request.request_id,
            **kwargs,
        )

    def _render(self, ctx: ViewContext, signed: SignedIn, page: Page) -> Response:
        query = ctx.request.query if ctx.request.method == "GET" else page.query
        try:
            data = getattr(self, f"_load_{page.name}")(ctx, signed, query)
        except QbsyncError as error:  # a page whose data cannot be read says why instead of failing
            data, page.error, page.status = {}, page.error or error.detail, max(page.status, error.status)
        page.data.update(data)
        done = DONE.get(query.get("done", ""))
        body = (
            _environment()
            .get_template(f"{page.name}.html")
            .render(
                page=page.name,
                base=_base(ctx),
                title=PAGE_TITLES[page.name],
                tenant=signed.tenant,
                csrf=signed.session.csrf_token,
                done=done,
                error=page.error,
                errors=page.errors,
                **page.data,
            )
        )
        return _html(body, page.status)

    def _load_settings(self, ctx: ViewContext, signed: SignedIn, query: dict[str, str]) -> dict[str, Any]:
        tenant = self._call(ctx, signed, "get_tenant")
        return {"settings": _plain(tenant.settings)}

    def _load_quickbooks(self, ctx: ViewContext, signed: SignedIn, query: dict[str, str]) -> dict[str, Any]:
        return {"qbo": _plain(self._call(ctx, signed, "qbo_connection"))}

    def _load_connectors(self, ctx: ViewContext, signed: SignedIn, query: dict[str, str]) -> dict[str, Any]:
        grid = self._call(ctx, signed, "list_connectors")
        return {"connectors": _plain(grid)["items"], "transfer_types": ALL_TRANSFERS}

    def _load_issues(self, ctx: ViewContext, signed: SignedIn, query: dict[str, str]) -> dict[str, Any]:
        kind = query.get("kind") if query.get("kind") in MATCH_KINDS else "customers"
        issues = _plain(self._call(ctx, signed, "match_issues"))["items"]
        for issue in issues:
            issue["hint"] = _issue_hint(issue)
        counts = {k: sum(1 for i in issues if i["kind"] == k) for k in MATCH_KINDS}
        return {"kind": kind, "issues": [i for i in issues if i["kind"] == kind], "counts": counts}

    def _load_invoices(self, ctx: ViewContext, signed: SignedIn, query: dict[str, str]) -> dict[str, Any]:
        state = query.get("state") if query.get("state") in INVOICE_STATES else None
        params = {"limit": "100", **({"state": state} if state else {})}
        if query.get("cursor"):
            params["cursor"] = query["cursor"][:2000]
        listing = _plain(self._call(ctx, signed, "list_invoices", query=params))
        return {"state": state, "states": INVOICE_STATES, "invoices": listing["items"], "cursor": listing["cursor"]}

    def _load_transfers(self, ctx: ViewContext, signed: SignedIn, query: dict[str, str]) -> dict[str, Any]:
        filters = {k: query[k][:64] for k in ("kind", "status", "id") if query.get(k)}
        params = {"limit": "200", **filters}
        if query.get("cursor"):
            params["cursor"] = query["cursor"][:2000]
        listing = _plain(self._call(ctx, signed, "transfers", query=params))
        return {"filters": filters, "transfers": listing["items"], "cursor": listing["cursor"], "kinds": RECORD_KINDS}

    def _load_sync(self, ctx: ViewContext, signed: SignedIn, query: dict[str, str]) -> dict[str, Any]:
        sync_id = query.get("id", "")
        progress = None
        if re.fullmatch(r"s_[0-9a-f]{1,40}", sync_id):
            progress = _plain(self._call(ctx, signed, "sync_progress", sync_id=sync_id))
        return {"progress": progress, "kinds": RECORD_KINDS}

    def _load_mappings(self, ctx: ViewContext, signed: SignedIn, query: dict[str, str]) -> dict[str, Any]:
        sets = _plain(self._call(ctx, signed, "list_mappings"))["items"]
        kinds = [s["kind"] for s in sets]
        wanted = query.get("kind", "")
        kind = wanted if wanted in kinds else (kinds[0] if kinds else "")
        current = next((s for s in sets if s["kind"] == kind), None)
        return {"kind": kind, "sets": sets, "current": current, "blank_rows": 3}


# --- helpers ---------------------------------------------------------------------------------------------------


def _issue_hint(issue: dict[str, Any]) -> str:
    """What to do about a match issue, in the console's terms (the API's action names API calls)."""
    code, action = str(issue.get("code") or ""), str(issue.get("action") or "")
    if issue.get("candidates"):
        return "Pick the QuickBooks record below, or fix the record in your app and re-sync it."
    if code.endswith("_duplicate_name"):
        return "Rename it in your app or in QuickBooks, then re-sync it."
    if "/v1/" in action or not action:
        return "Fix the record in your app (or in QuickBooks), then re-sync it."
    return action


def _plain(model: BaseModel) -> Any:
    return json.loads(model.model_dump_json())


def _form(ctx: ViewContext) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body (anything else reads as an empty form)."""
    content_type = ctx.request.header("content-type").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    try:
        text = ctx.request.body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return parse_qs(text, keep_blank_values=True, max_num_fields=500)


def _tab(form: dict[str, list[str]]) -> dict[str, str]:
    return {"kind": _one(form, "kind")} if _one(form, "kind") else {}


def _one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0].strip() if values else ""


def _int_or_text(value: str) -> int | str:
    """A number field's value as an int, or as it was typed (validation then says what is wrong with it)."""
    return int(value) if re.fullmatch(r"-?\d{1,9}", value) else value


def _csrf_ok(ctx: ViewContext, signed: SignedIn, form: dict[str, list[str]]) -> bool:
    return ctx.services.console.check_csrf(signed.session, _one(form, "csrf_token"))


def _same_origin(ctx: ViewContext) -> bool:
    """A state-changing request must say it comes from this origin (browsers send ``Origin`` on every POST)."""
    expected = _origin(ctx.request.public_base_url)
    origin = ctx.request.header("origin")
    if origin:
        return origin == expected
    referer = ctx.request.header("referer")
    return bool(referer) and _origin(referer) == expected


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _base(ctx: ViewContext) -> str:
    return urlsplit(ctx.request.public_base_url).path.rstrip("/")


def _is_https(ctx: ViewContext) -> bool:
    return ctx.request.public_base_url.startswith("https://")


def _cookie(ctx: ViewContext, value: str, *, max_age: int) -> str:
    secure = _is_https(ctx)
    name = SECURE_COOKIE if secure else COOKIE
    attributes = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def _cookie_token(ctx: ViewContext) -> str:
    wanted = SECURE_COOKIE if _is_https(ctx) else COOKIE
    for part in ctx.request.header("cookie").split(";"):
        name, _, value = part.strip().partition("=")
        if name == wanted:
            return value.strip()
    return ""


def _headers(content_type: str) -> dict[str, str | list[str]]:
    return {
        "Content-Type": content_type,
        "Cache-Control": "no-store",
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


def _html(body: str, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers=_headers("text/html; charset=utf-8"))


def _redirect(ctx: ViewContext, path: str, **query: str) -> Response:
    """303 to a console path, under the API's base path (an execute-api stage, when there is one)."""
    location = _base(ctx) + path + ("?" + urlencode(query) if query else "")
    return Response(body="", status_code=303, headers={**_headers("text/plain"), "Location": location})


def _static(asset: str) -> Response:
    match = _ASSET.match(asset)
    name = f"{match.group(1)}.{match.group(3)}" if match else ""
    if not match or not (HERE / "static" / name).is_file() or _asset_version(name) != match.group(2):
        raise NotFound("No such console asset.")
    headers = _headers(ASSET_TYPES[match.group(3)])
    headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return Response(body=(HERE / "static" / name).read_text("utf-8"), headers=headers)
