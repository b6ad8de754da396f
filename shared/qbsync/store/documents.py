"""Records stored as one JSON document attribute (``doc``) beside their keys and ``version``.

Connectors (and, later, tickets and jobs) have nested, evolving fields that nothing queries inside; one JSON
document keeps the DynamoDB item simple and lets both adapters share this one serialisation.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from qbsync.store.ports import Connector, Job, QboConnection, SyncRecord, Ticket

D = TypeVar("D", Connector, Job, Ticket, QboConnection, SyncRecord)


def to_doc(record: Connector | Job | Ticket | QboConnection | SyncRecord) -> str:
    data = dataclasses.asdict(record)
    data.pop("version")
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def from_doc(cls: type[D], doc: str, version: int) -> D:
    data: dict[str, Any] = json.loads(doc)
    fields = {f.name for f in dataclasses.fields(cls)}
    known = {k: v for k, v in data.items() if k in fields}  # tolerate fields added by newer code
    return cls(**known, version=version)


def connector_doc(connector: Connector) -> str:
    return to_doc(connector)


def connector_from_doc(doc: str, version: int) -> Connector:
    return from_doc(Connector, doc, version)


def connector_owner(connector: Connector) -> str:
    """The owner string of a username claim: enough to find the connector again."""
    return f"{connector.tenant_id}/{connector.connector_id}"


def parse_connector_owner(owner: str) -> tuple[str, str]:
    tenant_id, _, connector_id = owner.partition("/")
    return tenant_id, connector_id
