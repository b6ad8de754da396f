"""qbsync REST API (and, in later issues, the Web Connector SOAP endpoint and the QBO callback).

Routes only: each view parses nothing and decides nothing; it calls one use case and returns a model.
"""

from chalice import Chalice, Response

from qbsync import __version__
from qbsync.api import presenters
from qbsync.api.params import int_param, str_param
from qbsync.api.routing import QueryParam, RestApi, ViewContext
from qbsync.connectors import (
    ConnectorCreate,
    ConnectorList,
    ConnectorPatch,
    ConnectorView,
    JobList,
    OrganizationRoute,
    OrganizationRouteRequest,
    connector_view,
    job_list,
)
from qbsync.console.web import Console
from qbsync.errors import NotFound, QbsyncError
from qbsync.mappings import MappingList, MappingPut, MappingSetView
from qbsync.models import (
    Health,
    TenantAdminPatch,
    TenantCreated,
    TenantCreateRequest,
    TenantList,
    TenantSettings,
    TenantView,
)
from qbsync.qbo.connection import AuthorizationUrl, ConnectionTest, QboConnectionView, callback_page
from qbsync.qbo.webhooks import SIGNATURE_HEADER, WebhookAck
from qbsync.qbwc.qwc import APP_NAME, qwc_document, qwc_filename
from qbsync.qbwc.soap import dispatch
from qbsync.qbwc.wsdl import support_page_html, wsdl_document
from qbsync.sync import desktop_transfers
from qbsync.sync.ingest import (
    AcceptedList,
    MatchIssueList,
    RecordView,
    ResolveRequest,
    SyncProgress,
    SyncRequest,
    TransferList,
    record_view,
)
from qbsync.sync.inventory import InventoryLevel, InventoryList
from qbsync.sync.journal import ChargeView, PeriodList, PeriodView, PostQueued, PostRequest
from qbsync.sync.records import (
    RECORD_MODELS,
    SourceCustomer,
    SourceExpenseReport,
    SourceInvoice,
    SourceItem,
    SourcePayment,
    SourcePurchaseOrder,
    SourceTimesheet,
)
from qbsync.sync.summarize import SourceCharge
from qbsync.tenancy import settings_of

app = Chalice(app_name="qbsync", configure_logs=False)  # Powertools owns the "qbsync" logger (JSON, redacted)
api = RestApi(
    app,
    title="qbsync",
    description="QuickBooks Desktop (Web Connector) and QuickBooks Online integration backend.",
)


@api.route("/health", "GET", summary="Liveness check", auth="none", response=Health, tag="service")
def health(ctx: ViewContext) -> Health:
    return Health(status="ok", version=__version__, stage=ctx.services.settings.stage)


@api.route("/openapi.json", "GET", summary="This API's OpenAPI 3.1 document", auth="none", tag="service")
def openapi(ctx: ViewContext) -> Response:
    return Response(body=api.openapi_json(), headers={"Content-Type": "application/json"})


@api.route(
    "/v1/tenants",
    "POST",
    summary="Create a tenant and its API key",
    auth="admin",
    request=TenantCreateRequest,
    response=TenantCreated,
    status=201,
    tag="tenants",
)
def create_tenant(ctx: ViewContext) -> TenantCreated:
    body: TenantCreateRequest = ctx.body
    return presenters.tenant_created(ctx.services.tenants.create(body.name, body.settings))


@api.route(
    "/v1/tenants",
    "GET",
    summary="List tenants (oldest first)",
    auth="admin",
    response=TenantList,
    tag="tenants",
    query=(QueryParam("limit", "page size, 1-100", "integer"), QueryParam("cursor", "from the previous page")),
)
def list_tenants(ctx: ViewContext) -> TenantList:
    query = ctx.request.query
    page = ctx.services.tenants.list(
        limit=int_param(query, "limit", default=50, minimum=1, maximum=100), cursor=str_param(query, "cursor")
    )
    return presenters.tenant_list(page)


@api.route(
    "/v1/tenants/{tenant_id}",
    "PATCH",
    summary="Rename, deactivate or reactivate a tenant",
    auth="admin",
    request=TenantAdminPatch,
    response=TenantView,
    tag="tenants",
)
def update_tenant(ctx: ViewContext, tenant_id: str) -> TenantView:
    return presenters.tenant_view(ctx.services.tenants.admin_update(tenant_id, ctx.body))


@api.route("/v1/tenant", "GET", summary="The caller's tenant", response=TenantView, tag="tenant")
def get_tenant(ctx: ViewContext) -> TenantView:
    return presenters.tenant_view(ctx.tenant)


@api.route("/v1/tenant/settings", "GET", summary="Integration settings", response=TenantSettings, tag="tenant")
def get_settings(ctx: ViewContext) -> TenantSettings:
    return settings_of(ctx.tenant)


@api.route(
    "/v1/tenant/settings",
    "PATCH",
    summary="Change integration settings (JSON merge patch)",
    response=TenantSettings,
    body="object",
    tag="tenant",
)
def patch_settings(ctx: ViewContext) -> TenantSettings:
    return settings_of(ctx.services.tenants.update_settings(ctx.tenant, ctx.body))


@api.route(
    "/v1/connectors",
    "POST",
    summary="Create a Web Connector connector (QuickBooks Desktop company file login)",
    request=ConnectorCreate,
    response=ConnectorView,
    status=201,
    tag="connectors",
)
def create_connector(ctx: ViewContext) -> ConnectorView:
    return connector_view(ctx.services.connectors.create(ctx.tenant, ctx.body))


@api.route("/v1/connectors", "GET", summary="The connector grid", response=ConnectorList, tag="connectors")
def list_connectors(ctx: ViewContext) -> ConnectorList:
    return ConnectorList(items=[connector_view(c) for c in ctx.services.connectors.list(ctx.tenant)])


@api.route("/v1/connectors/{connector_id}", "GET", summary="One connector", response=ConnectorView, tag="connectors")
def get_connector(ctx: ViewContext, connector_id: str) -> ConnectorView:
    return connector_view(ctx.services.connectors.get(ctx.tenant, connector_id))


@api.route(
    "/v1/connectors/{connector_id}",
    "PATCH",
    summary="Rename, change the password, schedule or transfers, enable or disable",
    request=ConnectorPatch,
    response=ConnectorView,
    tag="connectors",
)
def update_connector(ctx: ViewContext, connector_id: str) -> ConnectorView:
    updated = ctx.services.connectors.update(ctx.tenant, connector_id, ctx.body)
    if ctx.body.enabled_transfers is not None:  # records that waited for a transfer turned on now go
        waited = desktop_transfers.turned_on(connector_id, updated.enabled_transfers)
        ctx.services.issues.release(ctx.tenant.tenant_id, waited, kinds=desktop_transfers.KINDS)
    return connector_view(updated)


@api.route(
    "/v1/connectors/{connector_id}/unlock",
    "POST",
    summary="Unlock a connector locked by failed logins",
    response=ConnectorView,
    tag="connectors",
)
def unlock_connector(ctx: ViewContext, connector_id: str) -> ConnectorView:
    return connector_view(ctx.services.connectors.unlock(ctx.tenant, connector_id))


@api.route(
    "/v1/connectors/{connector_id}/jobs",
    "GET",
    summary="The connector's queued and finished QuickBooks requests, with their QuickBooks ids and status",
    response=JobList,
    tag="connectors",
    query=(
        QueryParam("after", "seq to start after (the previous page's cursor)", "integer"),
        QueryParam("limit", "page size, 1-500", "integer"),
    ),
)
def connector_jobs(ctx: ViewContext, connector_id: str) -> JobList:
    query = ctx.request.query
    limit = int_param(query, "limit", default=100, minimum=1, maximum=500)
    after = int_param(query, "after", default=0, minimum=0, maximum=10**12)
    return job_list(ctx.services.connectors.jobs(ctx.tenant, connector_id, after=after, limit=limit), limit)


@api.route(
    "/v1/connectors/{connector_id}/qwc",
    "GET",
    summary="Download the connector's .qwc file for the QuickBooks Web Connector",
    tag="connectors",
    response_media_type="application/xml",
)
def download_qwc(ctx: ViewContext, connector_id: str) -> Response:
    connector = ctx.services.connectors.get(ctx.tenant, connector_id)
    return Response(
        body=qwc_document(connector, ctx.request.public_base_url).decode("utf-8"),
        headers={
            "Content-Type": "application/xml; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{qwc_filename(connector)}"',
        },
    )


@api.route(
    "/v1/organizations/{organization_id}/connector",
    "PUT",
    summary="Send an organization's records to a non-default connector (null: the default)",
    request=OrganizationRouteRequest,
    response=OrganizationRoute,
    tag="connectors",
)
def map_organization(ctx: ViewContext, organization_id: str) -> OrganizationRoute:
    return ctx.services.connectors.map_organization(ctx.tenant, organization_id, ctx.body.connector_id)


@api.route(
    "/v1/organizations/{organization_id}/connector",
    "GET",
    summary="The connector an organization's records go to",
    response=OrganizationRoute,
    tag="connectors",
)
def organization_route(ctx: ViewContext, organization_id: str) -> OrganizationRoute:
    return ctx.services.connectors.route(ctx.tenant, organization_id)


@api.route(
    "/v1/qbo/connect",
    "GET",
    summary="Start connecting QuickBooks Online: Intuit's authorization URL (state single-use, 10 minutes)",
    response=AuthorizationUrl,
    tag="quickbooks online",
)
def qbo_connect(ctx: ViewContext) -> AuthorizationUrl:
    return ctx.services.qbo.connect(ctx.tenant, ctx.request.public_base_url)


@api.route(
    "/qbo/callback",
    "GET",
    summary="Intuit's OAuth redirect (browser; no API key): finishes the connection and shows the company",
    auth="none",
    tag="quickbooks online",
    response_media_type="text/html",
    query=(
        QueryParam("code", "authorization code"),
        QueryParam("state", "the state from /v1/qbo/connect"),
        QueryParam("realmId", "the QuickBooks company id"),
        QueryParam("error", "set when the user declined"),
    ),
)
def qbo_callback(ctx: ViewContext) -> Response:
    query = ctx.request.query
    headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
    if query.get("error"):
        page = callback_page("QuickBooks was not connected", f"Intuit said: {query['error']}.")
        return Response(body=page, status_code=400, headers=headers)
    try:
        connection = ctx.services.qbo.callback(
            code=query.get("code", ""),
            state=query.get("state", ""),
            realm_id=query.get("realmId", ""),
            public_base_url=ctx.request.public_base_url,
        )
    except QbsyncError as error:
        return Response(
            body=callback_page("QuickBooks was not connected", error.detail), status_code=error.status, headers=headers
        )
    page = callback_page("QuickBooks is connected", f"Connected to {connection.company_name or connection.realm_id}.")
    return Response(body=page, headers=headers)


@api.route(
    "/qbo/webhooks",
    "POST",
    summary="QuickBooks Online webhook notifications (intuit-signature verified; queues a targeted reconcile)",
    auth="none",
    body="raw",
    response=WebhookAck,
    tag="quickbooks online",
)
def qbo_webhooks(ctx: ViewContext) -> WebhookAck:
    return ctx.services.webhooks.receive(ctx.request.body, ctx.request.header(SIGNATURE_HEADER))


@api.route(
    "/v1/qbo/connection",
    "GET",
    summary="QuickBooks Online connection status and token health",
    response=QboConnectionView,
    tag="quickbooks online",
)
def qbo_connection(ctx: ViewContext) -> QboConnectionView:
    return ctx.services.qbo.status(ctx.tenant)


@api.route(
    "/v1/qbo/connection/test",
    "POST",
    summary="Test the connection (reads CompanyInfo)",
    response=ConnectionTest,
    tag="quickbooks online",
)
def qbo_test(ctx: ViewContext) -> ConnectionTest:
    return ctx.services.qbo.test(ctx.tenant)


@api.route(
    "/v1/qbo/connection",
    "DELETE",
    summary="Disconnect: revoke the tokens at Intuit (settings are kept)",
    response=QboConnectionView,
    tag="quickbooks online",
)
def qbo_disconnect(ctx: ViewContext) -> QboConnectionView:
    return ctx.services.qbo.disconnect(ctx.tenant)


@api.route(
    "/qbwc",
    "POST",
    summary="QuickBooks Web Connector SOAP 1.1 endpoint (the AppURL of every .qwc file)",
    auth="none",
    body="raw",
    tag="web connector",
    response_media_type="text/xml",
    max_body_bytes=64 * 1024 * 1024,  # the SOAP layer enforces its own cap and answers with a soap:Fault
)
def web_connector(ctx: ViewContext) -> Response:
    answer = dispatch(
        ctx.request.body,
        ctx.request.header("soapaction") or None,
        ctx.services.web_connector,
        max_body_bytes=ctx.services.settings.max_soap_bytes,
    )
    return Response(
        body=answer.body.decode("utf-8"), status_code=answer.status, headers={"Content-Type": answer.content_type}
    )


@api.route(
    "/qbwc",
    "GET",
    summary="The Web Connector WSDL (GET /qbwc?wsdl)",
    auth="none",
    tag="web connector",
    response_media_type="text/xml",
)
def web_connector_wsdl(ctx: ViewContext) -> Response:
    soap_url = f"{ctx.request.public_base_url}/qbwc"
    return Response(body=wsdl_document(soap_url).decode("utf-8"), headers={"Content-Type": "text/xml; charset=utf-8"})


@api.route(
    "/qbwc/support",
    "GET",
    summary="The .qwc AppSupport page",
    auth="none",
    tag="web connector",
    response_media_type="text/html",
)
def web_connector_support(ctx: ViewContext) -> Response:
    return Response(body=support_page_html(APP_NAME), headers={"Content-Type": "text/html; charset=utf-8"})


# --- records in (T1-T4) and their state out (V2, V3) -------------------------------------------------------


@api.route(
    "/v1/customers",
    "POST",
    summary="Send customers to QuickBooks (one or a list)",
    body="json",
    schema=SourceCustomer,
    response=AcceptedList,
    status=202,
    tag="records",
)
def post_customers(ctx: ViewContext) -> AcceptedList:
    return ctx.services.ingest.accept(ctx.tenant, "customers", ctx.body)


@api.route(
    "/v1/items",
    "POST",
    summary="Send items/services to QuickBooks (one or a list)",
    body="json",
    schema=SourceItem,
    response=AcceptedList,
    status=202,
    tag="records",
)
def post_items(ctx: ViewContext) -> AcceptedList:
    return ctx.services.ingest.accept(ctx.tenant, "items", ctx.body)


@api.route(
    "/v1/invoices",
    "POST",
    summary="Send invoices to QuickBooks (one or a list)",
    body="json",
    schema=SourceInvoice,
    response=AcceptedList,
    status=202,
    tag="records",
)
def post_invoices(ctx: ViewContext) -> AcceptedList:
    return ctx.services.ingest.accept(ctx.tenant, "invoices", ctx.body)


@api.route(
    "/v1/payments",
    "POST",
    summary="Send payments to QuickBooks (one or a list)",
    body="json",
    schema=SourcePayment,
    response=AcceptedList,
    status=202,
    tag="records",
)
def post_payments(ctx: ViewContext) -> AcceptedList:
    return ctx.services.ingest.accept(ctx.tenant, "payments", ctx.body)


@api.route(
    "/v1/timesheets",
    "POST",
    summary="Send timesheets to QuickBooks Desktop time tracking (one or a list)",
    body="json",
    schema=SourceTimesheet,
    response=AcceptedList,
    status=202,
    tag="records",
)
def post_timesheets(ctx: ViewContext) -> AcceptedList:
    return ctx.services.ingest.accept(ctx.tenant, "timesheets", ctx.body)


@api.route(
    "/v1/expense-reports",
    "POST",
    summary="Send expense reports to QuickBooks Desktop as bills or credit-card charges (one or a list)",
    body="json",
    schema=SourceExpenseReport,
    response=AcceptedList,
    status=202,
    tag="records",
)
def post_expense_reports(ctx: ViewContext) -> AcceptedList:
    return ctx.services.ingest.accept(ctx.tenant, "expense_reports", ctx.body)


@api.route(
    "/v1/purchase-orders",
    "POST",
    summary="Send purchase orders to QuickBooks Desktop (one or a list)",
    body="json",
    schema=SourcePurchaseOrder,
    response=AcceptedList,
    status=202,
    tag="records",
)
def post_purchase_orders(ctx: ViewContext) -> AcceptedList:
    return ctx.services.ingest.accept(ctx.tenant, "purchase_orders", ctx.body)


@api.route("/v1/timesheets/{record_id}", "GET", summary="A timesheet's sync state", response=RecordView, tag="records")
def get_timesheet(ctx: ViewContext, record_id: str) -> RecordView:
    return record_view(ctx.services.ingest.get(ctx.tenant, "timesheets", record_id))


@api.route(
    "/v1/expense-reports/{record_id}",
    "GET",
    summary="An expense report's sync state",
    response=RecordView,
    tag="records",
)
def get_expense_report(ctx: ViewContext, record_id: str) -> RecordView:
    return record_view(ctx.services.ingest.get(ctx.tenant, "expense_reports", record_id))


@api.route(
    "/v1/purchase-orders/{record_id}",
    "GET",
    summary="A purchase order's sync state",
    response=RecordView,
    tag="records",
)
def get_purchase_order(ctx: ViewContext, record_id: str) -> RecordView:
    return record_view(ctx.services.ingest.get(ctx.tenant, "purchase_orders", record_id))


@api.route(
    "/v1/inventory",
    "GET",
    summary="Quantities on hand read back from QuickBooks Desktop (after purchase orders are received)",
    response=InventoryList,
    tag="records",
    query=(QueryParam("limit", "page size, 1-500", "integer"), QueryParam("cursor", "from the previous page")),
)
def inventory_levels(ctx: ViewContext) -> InventoryList:
    query = ctx.request.query
    return ctx.services.inventory.levels(
        ctx.tenant,
        limit=int_param(query, "limit", default=100, minimum=1, maximum=500),
        cursor=str_param(query, "cursor"),
    )


@api.route(
    "/v1/inventory/{item_id}",
    "GET",
    summary="One item's quantity on hand (by the source item id, or the QuickBooks ListID)",
    response=InventoryLevel,
    tag="records",
)
def inventory_level(ctx: ViewContext, item_id: str) -> InventoryLevel:
    return ctx.services.inventory.level(ctx.tenant, item_id)


@api.route("/v1/customers/{record_id}", "GET", summary="A customer's sync state", response=RecordView, tag="records")
def get_customer(ctx: ViewContext, record_id: str) -> RecordView:
    return record_view(ctx.services.ingest.get(ctx.tenant, "customers", record_id))


@api.route("/v1/items/{record_id}", "GET", summary="An item's sync state", response=RecordView, tag="records")
def get_item(ctx: ViewContext, record_id: str) -> RecordView:
    return record_view(ctx.services.ingest.get(ctx.tenant, "items", record_id))


@api.route(
    "/v1/invoices/{record_id}",
    "GET",
    summary="An invoice's sync state, QuickBooks balance, paid status and paid date",
    response=presenters.InvoiceView,
    tag="records",
)
def get_invoice(ctx: ViewContext, record_id: str) -> presenters.InvoiceView:
    return presenters.invoice_view(ctx.services.ingest.get(ctx.tenant, "invoices", record_id))


@api.route(
    "/v1/invoices",
    "GET",
    summary="The invoices tab: each invoice's sync state, the reason it waits and the action to take",
    response=presenters.InvoiceList,
    tag="records",
    query=(
        QueryParam("state", "pending, synced, waiting, blocked or failed"),
        QueryParam("limit", "page size, 1-500", "integer"),
        QueryParam("cursor", "from the previous page"),
    ),
)
def list_invoices(ctx: ViewContext) -> presenters.InvoiceList:
    query = ctx.request.query
    page = ctx.services.ingest.list_records(
        ctx.tenant,
        "invoices",
        state=str_param(query, "state", max_length=20),
        limit=int_param(query, "limit", default=100, minimum=1, maximum=500),
        cursor=str_param(query, "cursor"),
    )
    return presenters.invoice_list(page)


@api.route(
    "/v1/payments/{record_id}", "GET", summary="A payment's sync state", response=presenters.PaymentView, tag="records"
)
def get_payment(ctx: ViewContext, record_id: str) -> presenters.PaymentView:
    return presenters.payment_view(ctx.services.ingest.get(ctx.tenant, "payments", record_id))


# --- summarized journal entries (S1, T5) -----------------------------------------------------------------


@api.route(
    "/v1/charges",
    "POST",
    summary="Send charges to summarize into journal entries (one or a list; summarized mode)",
    body="json",
    schema=SourceCharge,
    response=AcceptedList,
    status=202,
    tag="journal entries",
)
def post_charges(ctx: ViewContext) -> AcceptedList:
    return ctx.services.journal.accept(ctx.tenant, ctx.body)


@api.route(
    "/v1/charges/{record_id}",
    "GET",
    summary="A charge's state: its period and the journal entry holding it",
    response=ChargeView,
    tag="journal entries",
)
def get_charge(ctx: ViewContext, record_id: str) -> ChargeView:
    return ctx.services.journal.charge(ctx.tenant, record_id)


@api.route(
    "/v1/journal-entries",
    "GET",
    summary="Every period with its journal entry, adjusting entries, totals and state (newest first)",
    response=PeriodList,
    tag="journal entries",
)
def list_journal_entries(ctx: ViewContext) -> PeriodList:
    return ctx.services.journal.periods(ctx.tenant)


@api.route(
    "/v1/journal-entries/{period}",
    "GET",
    summary="One period (YYYY-MM, YYYY-Www or YYYY-MM-DD): its entries, totals and state",
    response=PeriodView,
    tag="journal entries",
)
def get_journal_entry(ctx: ViewContext, period: str) -> PeriodView:
    return ctx.services.journal.period(ctx.tenant, period)


@api.route(
    "/v1/journal-entries/post",
    "POST",
    summary="Post now: every closed period, or the named period even before it closes",
    request=PostRequest,
    response=PostQueued,
    status=202,
    tag="journal entries",
)
def post_journal_entries(ctx: ViewContext) -> PostQueued:
    return ctx.services.journal.request_post(ctx.tenant, ctx.body.period)


@api.route(
    "/v1/transfers",
    "GET",
    summary="Transfer history, newest first (filter by kind, status, id)",
    response=TransferList,
    tag="records",
    query=(
        QueryParam("kind", "customers, items, invoices or payments"),
        QueryParam("status", "e.g. failed"),
        QueryParam("id", "one record's id"),
        QueryParam("limit", "page size, 1-500", "integer"),
        QueryParam("cursor", "from the previous page"),
    ),
)
def transfers(ctx: ViewContext) -> TransferList:
    query = ctx.request.query
    return ctx.services.issues.transfers(
        ctx.tenant,
        kind=str_param(query, "kind", max_length=20),
        status=str_param(query, "status", max_length=20),
        record_id=str_param(query, "id", max_length=64),
        limit=int_param(query, "limit", default=100, minimum=1, maximum=500),
        cursor=str_param(query, "cursor"),
    )


@api.route("/v1/mappings", "GET", summary="Every kind of mapping (M1-M5)", response=MappingList, tag="mappings")
def list_mappings(ctx: ViewContext) -> MappingList:
    return ctx.services.mappings.list(ctx.tenant)


@api.route("/v1/mappings/{kind}", "GET", summary="One kind of mapping", response=MappingSetView, tag="mappings")
def get_mappings(ctx: ViewContext, kind: str) -> MappingSetView:
    return ctx.services.mappings.get(ctx.tenant, kind)


@api.route(
    "/v1/mappings/{kind}",
    "PUT",
    summary="Replace one kind of mapping: billing_codes, expense_categories, lines_of_business, resources, "
    "payroll_categories",
    request=MappingPut,
    response=MappingSetView,
    tag="mappings",
)
def put_mappings(ctx: ViewContext, kind: str) -> MappingSetView:
    return ctx.services.mappings.put(ctx.tenant, kind, ctx.body)


@api.route("/v1/match-issues", "GET", summary="Open match issues", response=MatchIssueList, tag="records")
def match_issues(ctx: ViewContext) -> MatchIssueList:
    return ctx.services.issues.match_issues(ctx.tenant)


@api.route(
    "/v1/match-issues/{issue_id}/resolve",
    "POST",
    summary="Resolve a match issue by linking the QuickBooks record (waiting records then flow)",
    request=ResolveRequest,
    response=RecordView,
    tag="records",
)
def resolve_match_issue(ctx: ViewContext, issue_id: str) -> RecordView:
    return record_view(ctx.services.issues.resolve(ctx.tenant, issue_id, ctx.body.quickbooks_id))


@api.route(
    "/v1/sync",
    "POST",
    summary="Sync Data: send everything not yet in QuickBooks, with progress (T9)",
    request=SyncRequest,
    response=SyncProgress,
    status=202,
    tag="records",
)
def start_sync(ctx: ViewContext) -> SyncProgress:
    return ctx.services.bulk.start(ctx.tenant, ctx.body)


@api.route("/v1/sync/{sync_id}", "GET", summary="Progress of a Sync Data run", response=SyncProgress, tag="records")
def sync_progress(ctx: ViewContext, sync_id: str) -> SyncProgress:
    return ctx.services.bulk.progress(ctx.tenant, sync_id)


@api.route(
    "/v1/records/{kind}/{record_id}/resync",
    "POST",
    summary="Send one record again after fixing it (T10)",
    response=RecordView,
    status=202,
    tag="records",
)
def resync(ctx: ViewContext, kind: str, record_id: str) -> RecordView:
    kind = kind.replace("-", "_")  # expense-reports, purchase-orders as in their routes
    if kind not in RECORD_MODELS:
        raise NotFound(f"No record kind {kind!r}.")
    return record_view(ctx.services.bulk.resync(ctx.tenant, kind, record_id))


# --- the admin console (issue 10): pages over the operations above, for a signed-in tenant admin ----------------

console = Console(api)
