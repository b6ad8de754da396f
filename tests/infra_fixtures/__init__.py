"""Tiny stand-in handlers for the local-stack tests, wired in through a copy of ``template.yaml``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from infra.template import cached_template

FIXTURES = Path(__file__).resolve().parent


def fixture_template() -> dict[str, Any]:
    """``template.yaml`` with every function's ``CodeUri`` pointing at its fixture folder here."""
    template = copy.deepcopy(cached_template())
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            folder = Path(resource["Properties"]["CodeUri"].rstrip("/")).name
            resource["Properties"]["CodeUri"] = str(FIXTURES / folder)
    return template
