"""``make run``: the whole backend on one machine, no AWS account and no Docker.

Starts an embedded AWS (moto server on loopback), creates the template's resources in it, serves the Chalice API
with chalice's threaded local dev server, and runs the SQS worker and the schedules in background threads.

    python -m infra.local_stack [--port 8000] [--host 127.0.0.1] [--speedup N] [--aws-port N]

``LocalStack`` does the same in-process for end-to-end tests (``port=0`` picks free ports).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from infra.aws_bootstrap import LocalResources, apply_env, bootstrap, reset_process_state
from infra.functions import find_function, load_handler
from infra.scheduler import Scheduler, speedup_from_env
from infra.worker import SqsWorker
from qbsync.cli import LOCAL_ENV_FILE

log = logging.getLogger("qbsync.local")

API_FUNCTION = "ApiFunction"
LOCAL_WEBHOOK_VERIFIER_TOKEN = "local-webhook-verifier-token"


def _env_int(name: str, default: int, environ: Mapping[str, str] | None = None) -> int:
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    return int(raw) if raw else default


class LocalStack:
    """Embedded AWS + API server + worker + scheduler, started and stopped together."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        aws_port: int = 0,
        speedup: float | None = None,
        prefix: str = "qbsync-local",
        environ: Mapping[str, str] | None = None,
        worker: bool = True,
        qbo_emulator: bool = True,
        scheduler: bool = True,
        retry_visibility_seconds: int | None = None,
        quiet: bool = True,
        template: dict[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.aws_port = aws_port
        self.speedup = speedup
        self.prefix = prefix
        self.environ = environ
        self.quiet = quiet
        self.template = template
        self._want_worker = worker
        self._want_qbo = qbo_emulator
        self.qbo_emulator: Any = None
        self._want_scheduler = scheduler
        self._retry_visibility_seconds = retry_visibility_seconds
        self.resources: LocalResources | None = None
        self.worker: SqsWorker | None = None
        self.scheduler: Scheduler | None = None
        self._moto: Any = None
        self._http: Any = None
        self._http_thread: threading.Thread | None = None
        self.aws_endpoint: str | None = None
        self._saved_environ: dict[str, str] | None = None

    @property
    def base_url(self) -> str:
        if self._http is None:
            raise RuntimeError("the local stack is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def admin_key(self) -> str:
        if self.resources is None:
            raise RuntimeError("the local stack is not running")
        return self.resources.admin_key()

    def start(self) -> LocalStack:
        try:
            self._start_aws()
            assert self.aws_endpoint is not None
            caller = os.environ if self.environ is None else self.environ
            qbo_defaults = {k: v for k, v in self._start_qbo(caller).items() if k not in caller}
            self.resources = bootstrap(
                self.aws_endpoint, prefix=self.prefix, template=self.template, environ={**qbo_defaults, **caller}
            )
            self.resources.env.update(qbo_defaults)  # QBO_API_BASE_URL and the secret are not template variables
            self._saved_environ = dict(os.environ)
            apply_env(self.resources)
            self._start_api()
            if self._want_worker:
                self.worker = SqsWorker(self.resources, retry_visibility_seconds=self._retry_visibility_seconds)
                self.worker.start()
            if self._want_scheduler:
                self.scheduler = Scheduler(self.resources, speedup=self.speedup)
                self.scheduler.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_qbo(self, caller: Mapping[str, str]) -> dict[str, str]:
        """The built-in QuickBooks Online emulator, unless the caller points QBO_ENVIRONMENT at another Intuit."""
        if caller.get("QBO_ENVIRONMENT") or not self._want_qbo:
            return {}
        from infra.qbo_emulator import QboEmulator

        self.qbo_emulator = QboEmulator(port=_env_int("QBSYNC_QBO_PORT", 0, caller)).start()
        self.qbo_emulator.add_company(name="Local Test Co")
        return {
            "QBO_ENVIRONMENT": self.qbo_emulator.discovery_url,
            "QBO_API_BASE_URL": self.qbo_emulator.api_base_url,
            "QBO_CLIENT_ID": self.qbo_emulator.client_id,
            "QBO_CLIENT_SECRET": self.qbo_emulator.client_secret,
            # Webhooks are signed with this verifier token (the emulator's stand-in for the Intuit portal's).
            "QBO_WEBHOOK_VERIFIER_TOKEN": LOCAL_WEBHOOK_VERIFIER_TOKEN,
        }

    def _start_aws(self) -> None:
        from moto.server import ThreadedMotoServer

        from infra.moto_speedups import install

        install()  # moto's Query and FIFO SendMessage would slow down as the run's data grows
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.aws_port, verbose=not self.quiet)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.aws_port = port
        self.aws_endpoint = f"http://{host}:{port}"

    def _start_api(self) -> None:
        from chalice.config import Config
        from chalice.local import create_local_server

        assert self.resources is not None
        spec = find_function(API_FUNCTION, self.resources)
        # A fresh module per stack: chalice's local server rebases the app object's class, so a second stack in one
        # process (the e2e modules, infra.request_count) must not reuse the first one's app.
        app_obj = load_handler(API_FUNCTION, self.resources, fresh=True)
        config = Config.create(
            chalice_stage="dev",
            app_name="qbsync",
            chalice_app=app_obj,
            function_name=spec["function_name"],
            lambda_timeout=spec["timeout"],
            lambda_memory_size=spec["memory_size"],
        )
        # LocalDevServer uses a ThreadingMixIn HTTPServer: one slow request does not block the others.
        self._http = create_local_server(app_obj, config, self.host, self.port)
        self.port = int(self._http.server.server_address[1])
        self._http_thread = threading.Thread(
            target=self._http.server.serve_forever, name="qbsync-api", kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._http_thread.start()

    def stop(self) -> None:
        """Stop everything that started, in reverse order; safe to call twice."""
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self._http is not None:
            self._http.server.shutdown()
            self._http.server.server_close()
            if self._http_thread is not None:
                self._http_thread.join(10)
            self._http = None
            self._http_thread = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self.qbo_emulator is not None:
            self.qbo_emulator.stop()
            self.qbo_emulator = None
        if self._saved_environ is not None:
            # Give the process its environment back, so a later stack in it starts from the same place (its own
            # emulator, its own embedded AWS) instead of inheriting this one's dead endpoints.
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None
            reset_process_state()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def banner(stack: LocalStack) -> str:
    assert stack.resources is not None
    base = stack.base_url
    key = stack.admin_key
    lines = [
        "",
        "qbsync local stack is running",
        f"  API            {base}   (health: {base}/health, OpenAPI: {base}/openapi.json)",
        f"  Admin key      {key}",
        f"  Embedded AWS   {stack.aws_endpoint}   (table {stack.resources.env.get('QBSYNC_TABLE')})",
        f"  Web Connector  {base}/qbwc   (WSDL: {base}/qbwc?wsdl; try: .venv/bin/qbsync wc-sim --help)",
    ]
    if stack.qbo_emulator is not None:
        lines.append(f"  QBO emulator   {stack.qbo_emulator.base_url}   (connect: GET {base}/v1/qbo/connect)")
    else:
        lines.append(f"  QuickBooks Online  {stack.resources.env.get('QBO_ENVIRONMENT')}")
    if stack.worker is not None:
        lines.append(f"  SQS worker     {', '.join(f for f, _ in stack.worker.sources) or 'no SQS functions'}")
    if stack.scheduler is not None:
        schedules = ", ".join(f"{s.function} every {stack.scheduler.interval(s):g}s" for s in stack.scheduler.schedules)
        lines.append(f"  Schedules      {schedules or 'none'} (speedup x{stack.scheduler.speedup:g})")
    lines += [
        "",
        "What next:",
        f"  curl -s -X POST {base}/v1/tenants -H 'Authorization: Bearer {key}' \\",
        "       -H 'Content-Type: application/json' -d '{\"name\": \"Acme\"}'",
        f"  curl -s {base}/v1/tenant -H 'Authorization: Bearer <api_key from the answer above>'",
        "  .venv/bin/qbsync --help            (tenants, settings, run-schedule reconciler, …)",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local_stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface for the API (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=_env_int("QBSYNC_PORT", 8000), help="API port (QBSYNC_PORT)")
    parser.add_argument(
        "--aws-port", type=int, default=_env_int("QBSYNC_AWS_PORT", 0), help="embedded AWS port (default: free)"
    )
    parser.add_argument(
        "--speedup", type=float, default=None, help="run schedules N times faster (QBSYNC_SCHEDULE_SPEEDUP)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the moto server would log every long poll
    speedup = args.speedup if args.speedup is not None else speedup_from_env()
    if speedup <= 0:
        parser.error("--speedup must be positive")

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack = LocalStack(host=args.host, port=args.port, aws_port=args.aws_port, speedup=speedup)
    try:
        stack.start()
    except OSError as exc:
        print(f"cannot start the local stack: {exc}", file=sys.stderr)
        return 1
    env_file = write_env_file(stack)
    try:
        print(banner(stack), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        print("stopping…", flush=True)
        env_file.unlink(missing_ok=True)
        stack.stop()
    return 0


def write_env_file(stack: LocalStack) -> Path:
    """Leave the running stack's settings where ``qbsync run-schedule`` looks for them (removed on exit)."""
    assert stack.resources is not None
    path = Path(LOCAL_ENV_FILE)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(stack.resources.env, indent=2, sort_keys=True))
    return path


if __name__ == "__main__":
    sys.exit(main())
