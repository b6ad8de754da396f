"""``make invoke FN=<function> EVENT=events/<file>.json``: run one Lambda handler in-process.

The no-Docker counterpart of ``sam local invoke``: an in-process embedded AWS (``moto.mock_aws``) with the template's
resources, the functions' environment, a Lambda-shaped context; prints the handler's JSON result.

    python -m infra.invoke transfer_worker events/transfer_worker_batch.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any


def invoke(function: str, event: Any) -> Any:
    """Bootstrap an in-process embedded AWS and run ``function`` on ``event`` (exceptions propagate)."""
    from moto import mock_aws

    from infra.aws_bootstrap import apply_env, bootstrap
    from infra.functions import context_for, find_function, load_handler

    with mock_aws():
        resources = bootstrap(None)
        apply_env(resources)
        spec = find_function(function, resources)
        handler = load_handler(function, resources)
        return handler(event, context_for(spec, resources))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.invoke", description="Run one Lambda handler in-process.")
    parser.add_argument("function", help="logical id (TransferWorkerFunction) or folder name (transfer_worker)")
    parser.add_argument("event_file", type=Path, help="JSON event, e.g. events/<file>.json ('-' for stdin)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        raw = sys.stdin.read() if str(args.event_file) == "-" else args.event_file.read_text(encoding="utf-8")
        event = json.loads(raw)
    except (OSError, ValueError) as exc:
        print(f"cannot read the event {args.event_file}: {exc}", file=sys.stderr)
        return 2
    try:
        result = invoke(args.function, event)
    except KeyError as exc:
        print(exc.args[0] if exc.args else exc, file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
