"""Reading the connected company (CompanyInfo) through the API client, for the connection lifecycle."""

from __future__ import annotations

from typing import Any

from qbsync.qbo.client import QboClient, TokenSource
from qbsync.qbo.connection import CompanyReader
from qbsync.settings import Settings


def company_reader(settings: Settings) -> CompanyReader:
    def read(realm_id: str, tokens: TokenSource) -> dict[str, Any]:
        return QboClient.for_settings(realm_id, tokens, settings).company_info()

    return read
