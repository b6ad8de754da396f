"""Helpers shared by the test suites."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference"


def load_function_module(folder: str) -> ModuleType:
    """Import ``functions/<folder>/app.py`` under a unique module name (every function has an ``app.py``)."""
    name = f"qbsync_function_{folder}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / folder / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def serve_api() -> Iterator[str]:
    """The real Chalice app on loopback; yields its base URL. Chalice adapts the app object the first time it
    serves it, so a second server (another test module) reuses that adaptation instead of redoing it."""
    from chalice.config import Config
    from chalice.local import CustomLocalChalice, LocalDevServer, create_local_server

    app = load_function_module("api").app
    config = Config.create(chalice_stage="dev", app_name="qbsync", chalice_app=app)
    if isinstance(app, CustomLocalChalice):
        server = LocalDevServer(app, config, "127.0.0.1", 0)
    else:
        server = create_local_server(app, config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.server.shutdown()
        server.server.server_close()


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the Powertools logger writes (at DEBUG and above) while the block runs."""
    from qbsync.observability import get_logger

    logger = get_logger()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    previous_level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield buffer
    finally:
        handler.setStream(previous)
        logger.setLevel(previous_level)
