"""Load the template's Lambda handlers in-process and give them a Lambda-shaped context.

Every function folder holds a module named ``app.py``, so each is loaded from its file path under a distinct module
name; the folder is on ``sys.path`` only while its module executes (for sibling imports such as ``chalicelib``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any

from infra.aws_bootstrap import LocalResources
from qbsync.lambda_context import LambdaContext, lambda_context

_lock = threading.Lock()
_modules: dict[Path, Any] = {}

# Background invocations (SQS worker, schedules) take turns: in Lambda each runs in its own process, but here they
# share Powertools' module-level Logger/Metrics state, which concurrent threads would mix up.
invocation_lock = threading.RLock()


def short_name(spec: dict[str, Any]) -> str:
    """The function's folder name (``functions/transfer_worker/`` → ``transfer_worker``)."""
    return Path(str(spec["code_uri"]).rstrip("/")).name


def find_function(name: str, resources: LocalResources) -> dict[str, Any]:
    """The function spec for a logical id (``TransferWorkerFunction``) or folder name (``transfer_worker``)."""
    if name in resources.functions:
        return resources.functions[name]
    wanted = name.strip().rstrip("/").replace("-", "_")
    for spec in resources.functions.values():
        if short_name(spec) == wanted or spec["function_name"] == name:
            return spec
    known = ", ".join(sorted(f"{lid} ({short_name(s)})" for lid, s in resources.functions.items()))
    raise KeyError(f"no function {name!r} in the template; known: {known}")


def _load_module(path: Path, module_name: str, *, fresh: bool) -> Any:
    with _lock:
        if not fresh and path in _modules:
            return _modules[path]
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        folder = str(path.parent)
        sys.modules[module_name] = module
        sys.path.insert(0, folder)
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
        _modules[path] = module
        return module


def load_handler(name: str, resources: LocalResources, *, fresh: bool = False) -> Any:
    """The object the template's ``Handler`` names (``app.handler`` → function, ``app.app`` → Chalice app)."""
    spec = find_function(name, resources)
    module_part, _, attribute = str(spec["handler"]).rpartition(".")
    if not module_part or not attribute:
        raise ValueError(f"{spec['logical_id']}: handler {spec['handler']!r} is not module.attribute")
    code_dir = Path(spec["code_uri"])
    if not code_dir.is_absolute():
        code_dir = resources.root / code_dir
    path = code_dir / (module_part.replace(".", "/") + ".py")
    if not path.is_file():
        raise FileNotFoundError(f"{spec['logical_id']}: {path} does not exist")
    module = _load_module(path, f"qbsync_local_fn_{short_name(spec)}_{module_part.replace('.', '_')}", fresh=fresh)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise AttributeError(f"{path} has no {attribute!r}") from None


def context_for(spec: dict[str, Any], resources: LocalResources) -> LambdaContext:
    return lambda_context(
        spec["function_name"],
        spec["timeout"],
        memory_limit_in_mb=spec.get("memory_size", 512),
        region=resources.region,
        account_id=resources.account_id,
    )
