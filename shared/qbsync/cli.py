"""``qbsync`` command line: manage tenants, settings and connectors over the REST API, smoke-test a stack, run a
schedule once, look at and redrive the transfer dead-letter queue.

It talks to the local stack (default ``http://127.0.0.1:8000``) or a deployed stack: ``--url`` / ``QBSYNC_URL``,
``--key`` / ``QBSYNC_API_KEY`` (tenant), ``--admin-key`` / ``QBSYNC_ADMIN_KEY`` (admin).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import requests

from qbsync.settings import LOCAL_ADMIN_KEY

DEFAULT_URL = "http://127.0.0.1:8000"
LOCAL_ENV_FILE = Path(".qbsync") / "local-env.json"


SCHEDULE_ALIASES = {
    "reconcile": "reconciler",
    "sweep": "job_sweeper",
    "refresh-tokens": "token_refresher",
    "summarize": "summarizer",
}


class CliError(Exception):
    pass


def _is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in {"127.0.0.1", "localhost", "::1"}


class Client:
    def __init__(self, url: str, key: str | None, admin_key: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.admin_key = admin_key
        self.timeout = timeout

    def request(
        self, method: str, path: str, *, key: str | None = None, body: Any = None, params: Any = None
    ) -> requests.Response:
        """One HTTP request with ``key`` as the bearer token (none: unauthenticated); transport errors → CliError."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            return requests.request(
                method,
                self.url + path,
                headers=headers,
                params=params,
                data=None if body is None else json.dumps(body),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from None

    def call(self, method: str, path: str, *, admin: bool = False, body: Any = None, params: Any = None) -> Any:
        key = self.admin_key if admin else self.key
        if not key:
            which = "--admin-key / QBSYNC_ADMIN_KEY" if admin else "--key / QBSYNC_API_KEY"
            raise CliError(f"this command needs a key: pass {which}")
        response = self.request(method, path, key=key, body=body, params=params)
        try:
            payload = response.json()
        except ValueError:
            payload = {"detail": response.text[:500]}
        if response.status_code >= 400:
            raise CliError(describe_error(response.status_code, payload))
        return payload

    def text(self, path: str) -> str:
        """GET a non-JSON document (a .qwc file) with the tenant key."""
        if not self.key:
            raise CliError("this command needs a key: pass --key / QBSYNC_API_KEY")
        response = self.request("GET", path, key=self.key)
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = {"detail": response.text[:500]}
            raise CliError(describe_error(response.status_code, payload))
        return response.text


def describe_error(status: int, payload: Any) -> str:
    detail = payload.get("detail") if isinstance(payload, dict) else payload
    code = payload.get("code", status) if isinstance(payload, dict) else status
    extra = ""
    if isinstance(payload, dict) and payload.get("errors"):
        extra = "\n" + "\n".join(f"  {e['field']}: {e['message']}" for e in payload["errors"])
    return f"{status} {code}: {detail}{extra}"


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """``sales_tax.enabled=true`` → (["sales_tax", "enabled"], True). Values are JSON when they parse, else text."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise CliError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.split("."), value


def build_patch(assignments: list[str]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for text in assignments:
        path, value = parse_assignment(text)
        node = patch
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return patch


def run_schedule(name: str) -> dict[str, Any]:
    """Run a scheduled handler once, in this process, exactly as Lambda would (same handler, same event shape).

    Uses this environment's settings; next to a running ``make run`` it reads the embedded stack's settings from
    ``.qbsync/local-env.json`` for whatever the environment does not set."""
    from qbsync.schedules import SCHEDULES

    name = SCHEDULE_ALIASES.get(name, name)
    if name not in SCHEDULES:
        raise CliError(f"unknown schedule {name!r}; choose from {', '.join(sorted(SCHEDULES))}")
    _load_local_env()
    from qbsync.entrypoints import scheduled_handler
    from qbsync.lambda_context import lambda_context

    event = {"version": "0", "id": "cli", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    return scheduled_handler(name, SCHEDULES[name])(event, lambda_context(f"qbsync-{name}", timeout=900))


def save_qwc(client: Client, connector_id: str, output: str | None) -> dict[str, Any]:
    """Write the connector's .qwc file; report where, and the AppURL the Web Connector will call."""
    from qbsync.qbxml.safexml import parse_xml

    document = client.text(f"/v1/connectors/{connector_id}/qwc")
    app_url = parse_xml(document).findtext("AppURL")
    path = Path(output or f"{connector_id}.qwc")
    path.write_text(document, encoding="utf-8")
    return {"written": str(path), "app_url": app_url}


def _load_local_env() -> None:
    """Next to a running ``make run``, fill what the environment does not set from the stack's settings."""
    if LOCAL_ENV_FILE.exists():
        for key, value in json.loads(LOCAL_ENV_FILE.read_text()).items():
            os.environ.setdefault(key, value)


def dead_letters(args: argparse.Namespace) -> dict[str, Any]:
    """``dlq list|redrive`` against the transfer dead-letter queue of this environment's stack (AWS directly)."""
    _load_local_env()
    from qbsync.deadletters import DeadLetterQueue
    from qbsync.errors import QbsyncError
    from qbsync.settings import Settings

    try:
        queue = DeadLetterQueue(Settings.from_env())
        if args.action == "list":
            return queue.peek(limit=args.limit)
        return queue.redrive(limit=args.limit, message_ids=args.message_id or ())
    except QbsyncError as exc:
        raise CliError(exc.detail) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qbsync", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("QBSYNC_URL"), help=f"API base URL (default {DEFAULT_URL})")
    parser.add_argument(
        "--stack",
        default=os.environ.get("QBSYNC_STACK"),
        help="deployed CloudFormation stack: --url from its ApiUrl output, the admin key from its secret",
    )
    parser.add_argument("--key", default=os.environ.get("QBSYNC_API_KEY"), help="tenant API key")
    parser.add_argument("--admin-key", default=os.environ.get("QBSYNC_ADMIN_KEY"), help="admin key")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tenants = sub.add_parser("tenants", help="create and list tenants (admin key)")
    tsub = tenants.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = tsub.add_parser("create", help="create a tenant; prints its API key once")
    create.add_argument("name")
    listing = tsub.add_parser("list", help="list tenants")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor")
    for action, help_text in (
        ("deactivate", "refuse the tenant's keys and Web Connector logins"),
        ("activate", "reactivate a tenant"),
    ):
        one = tsub.add_parser(action, help=help_text)
        one.add_argument("tenant_id")

    sub.add_parser("tenant", help="show the tenant of --key")

    settings = sub.add_parser("settings", help="show or change the tenant's integration settings")
    ssub = settings.add_subparsers(dest="action", required=True, metavar="ACTION")
    ssub.add_parser("show", help="print the settings")
    setp = ssub.add_parser("set", help="change settings: KEY=VALUE … (dotted keys, JSON values, null resets)")
    setp.add_argument("assignments", nargs="+", metavar="KEY=VALUE")

    connectors = sub.add_parser("connectors", help="QuickBooks Desktop Web Connector connectors (tenant key)")
    csub = connectors.add_subparsers(dest="action", required=True, metavar="ACTION")
    ccreate = csub.add_parser("create", help="create a connector (the Web Connector user and password)")
    ccreate.add_argument("name")
    ccreate.add_argument("--username", required=True, help="the Web Connector user name (unique per stack)")
    ccreate.add_argument(
        "--password",
        default=os.environ.get("QBSYNC_CONNECTOR_PASSWORD"),
        help="the password typed once into the Web Connector (or QBSYNC_CONNECTOR_PASSWORD)",
    )
    csub.add_parser("list", help="the connector grid")
    qwc = csub.add_parser("qwc", help="download a connector's .qwc file")
    qwc.add_argument("connector_id")
    qwc.add_argument("-o", "--output", help="file to write (default: the name the API suggests)")

    qbo = sub.add_parser("qbo", help="QuickBooks Online connection (tenant key)")
    qsub = qbo.add_subparsers(dest="action", required=True, metavar="ACTION")
    qsub.add_parser("connect", help="print Intuit's authorization URL to open in a browser")
    qsub.add_parser("status", help="the connection's status and token health")

    stack = sub.add_parser("stack", help="the deployed stack's outputs and secrets (needs --stack, AWS credentials)")
    stsub = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    stsub.add_parser("outputs", help="print the stack's outputs (ApiUrl, SoapUrl, QboRedirectUri…)")
    stsub.add_parser("admin-key", help="print the admin key (from the AdminKeySecretArn secret)")
    put = stsub.add_parser("put-secret", help="store standard input as a secret named by an output (…SecretArn)")
    put.add_argument("output", help="e.g. QboClientSecretArn")

    smoke = sub.add_parser("smoke", help="end-to-end check of a (deployed) stack over HTTP (admin key)")
    smoke.add_argument("--keep", action="store_true", help="leave the smoke tenant active (default: deactivate it)")

    run = sub.add_parser(
        "run-schedule",
        help="run a scheduled handler once "
        "(reconciler|reconcile, token_refresher, job_sweeper|sweep, summarizer|summarize)",
    )
    run.add_argument("name")

    sub.add_parser("health", help="check that the API answers")
    sub.add_parser(
        "demo", help="send the demo customers, items and invoices (tenant key; see the README console guide)"
    )

    dlq = sub.add_parser("dlq", help="the transfer dead-letter queue: list, or redrive to the transfer queue")
    dsub = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    dlist = dsub.add_parser("list", help="show parked messages (left in place; FIFO: the head of each group)")
    dlist.add_argument("--limit", type=int, default=50)
    redrive = dsub.add_parser("redrive", help="send parked messages back to the transfer queue, in their groups")
    redrive.add_argument("--limit", type=int, default=100)
    redrive.add_argument("--message-id", action="append", help="only this message (repeatable)")

    sim = sub.add_parser(
        "wc-sim",
        help="run one Web Connector scheduled update against --url (simulator + fake QuickBooks company)",
        add_help=False,
    )
    sim.add_argument("sim_args", nargs=argparse.REMAINDER, help="--url URL --user U --password P [...]; --help")
    return parser


def run_wc_sim(sim_args: list[str]) -> int:
    """The Web Connector simulator lives in the repository's ``infra/`` (a development tool, not shipped in the
    Lambda layer); next to an editable install it is found from the package's location."""
    try:
        from infra import wc_sim
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "infra" / "wc_sim.py").exists():
            print("qbsync: wc-sim needs the qbsync repository (infra/wc_sim.py) next to the package", file=sys.stderr)
            return 1
        sys.path.insert(0, str(root))
        from infra import wc_sim
    return int(wc_sim.main(sim_args))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "wc-sim" in argv:  # everything after it belongs to the simulator (argparse cannot forward "--" options)
        return run_wc_sim(argv[argv.index("wc-sim") + 1 :])
    args = build_parser().parse_args(argv)
    try:
        client = make_client(args)
        result = dispatch(args, client)
    except CliError as exc:
        print(f"qbsync: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def make_client(args: argparse.Namespace) -> Client:
    """URL and admin key from the flags, else (``--stack``) from the deployed stack, else the local defaults."""
    from qbsync.stack import StackError, read_secret, stack_outputs

    args.outputs = None
    admin_key = args.admin_key
    if args.stack:
        try:
            args.outputs = stack_outputs(args.stack)
            wants_admin = args.command in ("tenants", "smoke") or getattr(args, "action", None) == "admin-key"
            if admin_key is None and wants_admin:
                admin_key = read_secret(args.outputs, "AdminKeySecretArn")
        except StackError as exc:
            raise CliError(str(exc)) from None
    url = args.url or (args.outputs or {}).get("ApiUrl") or DEFAULT_URL
    if admin_key is None and _is_loopback(url):
        admin_key = LOCAL_ADMIN_KEY
    return Client(url, args.key, admin_key)


def stack_command(args: argparse.Namespace, client: Client) -> Any:
    from qbsync.stack import StackError, put_secret, secret_arn

    if args.outputs is None:
        raise CliError("stack commands need --stack NAME (or QBSYNC_STACK)")
    if args.action == "outputs":
        return args.outputs
    if args.action == "admin-key":
        return {"admin_key": client.admin_key}
    try:
        secret_arn(args.outputs, args.output)  # a wrong name fails before anything is read
        return put_secret(args.outputs, args.output, sys.stdin.read())
    except StackError as exc:
        raise CliError(str(exc)) from None


def dispatch(args: argparse.Namespace, client: Client) -> Any:
    if args.command == "tenants":
        if args.action == "create":
            return client.call("POST", "/v1/tenants", admin=True, body={"name": args.name})
        if args.action == "list":
            return client.call("GET", "/v1/tenants", admin=True, params={"limit": args.limit, "cursor": args.cursor})
        status = "inactive" if args.action == "deactivate" else "active"
        return client.call("PATCH", f"/v1/tenants/{args.tenant_id}", admin=True, body={"status": status})
    if args.command == "tenant":
        return client.call("GET", "/v1/tenant")
    if args.command == "settings":
        if args.action == "show":
            return client.call("GET", "/v1/tenant/settings")
        return client.call("PATCH", "/v1/tenant/settings", body=build_patch(args.assignments))
    if args.command == "connectors":
        if args.action == "create":
            if not args.password:
                raise CliError("connectors create needs --password (or QBSYNC_CONNECTOR_PASSWORD)")
            body = {"name": args.name, "username": args.username, "password": args.password}
            return client.call("POST", "/v1/connectors", body=body)
        if args.action == "list":
            return client.call("GET", "/v1/connectors")
        return save_qwc(client, args.connector_id, args.output)
    if args.command == "qbo":
        if args.action == "connect":
            return client.call("GET", "/v1/qbo/connect")
        return client.call("GET", "/v1/qbo/connection")
    if args.command == "stack":
        return stack_command(args, client)
    if args.command == "smoke":
        from qbsync.smoke import run_smoke

        report = run_smoke(client, keep=args.keep)
        if not report["ok"]:
            print(json.dumps(report, indent=2))
            raise CliError("smoke test failed: " + ", ".join(c["name"] for c in report["checks"] if c["ok"] is False))
        return report
    if args.command == "run-schedule":
        return run_schedule(args.name)
    if args.command == "dlq":
        if args.limit < 1 or args.limit > 10_000:
            raise CliError("--limit must be between 1 and 10000")
        return dead_letters(args)
    if args.command == "demo":
        from qbsync import demo

        return {kind: client.call("POST", f"/v1/{kind}", body=records) for kind, records in demo.RECORDS.items()}
    if args.command == "health":
        response = requests.get(client.url + "/health", timeout=client.timeout)
        return response.json()
    raise CliError(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
