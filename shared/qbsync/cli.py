"""``qbsync`` command line: manage tenants and settings over the REST API, run a schedule once, look at and
redrive the transfer dead-letter queue.

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


SCHEDULE_ALIASES = {"reconcile": "reconciler", "sweep": "job_sweeper", "refresh-tokens": "token_refresher"}


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

    def call(self, method: str, path: str, *, admin: bool = False, body: Any = None, params: Any = None) -> Any:
        key = self.admin_key if admin else self.key
        if not key:
            which = "--admin-key / QBSYNC_ADMIN_KEY" if admin else "--key / QBSYNC_API_KEY"
            raise CliError(f"this command needs a key: pass {which}")
        headers = {"Authorization": f"Bearer {key}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = requests.request(
                method,
                self.url + path,
                headers=headers,
                params=params,
                data=None if body is None else json.dumps(body),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from None
        try:
            payload = response.json()
        except ValueError:
            payload = {"detail": response.text[:500]}
        if response.status_code >= 400:
            detail = payload.get("detail") if isinstance(payload, dict) else payload
            code = payload.get("code", response.status_code) if isinstance(payload, dict) else response.status_code
            extra = ""
            if isinstance(payload, dict) and payload.get("errors"):
                extra = "\n" + "\n".join(f"  {e['field']}: {e['message']}" for e in payload["errors"])
            raise CliError(f"{response.status_code} {code}: {detail}{extra}")
        return payload


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
    parser.add_argument("--url", default=os.environ.get("QBSYNC_URL", DEFAULT_URL), help="API base URL")
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

    run = sub.add_parser(
        "run-schedule",
        help="run a scheduled handler once (reconciler|reconcile, token_refresher, job_sweeper|sweep)",
    )
    run.add_argument("name")

    sub.add_parser("health", help="check that the API answers")

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
    admin_key = args.admin_key or (LOCAL_ADMIN_KEY if _is_loopback(args.url) else None)
    client = Client(args.url, args.key, admin_key)
    try:
        result = dispatch(args, client)
    except CliError as exc:
        print(f"qbsync: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


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
    if args.command == "run-schedule":
        return run_schedule(args.name)
    if args.command == "dlq":
        if args.limit < 1 or args.limit > 10_000:
            raise CliError("--limit must be between 1 and 10000")
        return dead_letters(args)
    if args.command == "health":
        response = requests.get(client.url + "/health", timeout=client.timeout)
        return response.json()
    raise CliError(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
