"""Helpers shared by the test suites."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import sys
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
