"""The .qwc file a QuickBooks admin adds to the Web Connector (C1).

The Web Connector refuses an AppURL that is not https (QBWC1010) unless the host is ``localhost``, and any IP
address (QBWC1001); AppSupport must be on the same domain (QBWC1000). OwnerID and FileID stay the same for the
connector's whole life: QuickBooks remembers the first pair it sees, so regenerating them would break re-adds.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from lxml import etree

from qbsync.errors import NotConfigured
from qbsync.store.ports import Connector

APP_NAME = "qbsync"


def web_connector_urls(public_base_url: str) -> tuple[str, str]:
    """(AppURL, AppSupport) for a public base URL, made acceptable to the Web Connector or refused clearly."""
    parts = urlsplit(public_base_url.rstrip("/"))
    host = parts.hostname or ""
    if host in {"127.0.0.1", "::1"}:
        host = "localhost"  # the Web Connector accepts http only for localhost, and no IP addresses at all
    try:
        ipaddress.ip_address(host)
        raise NotConfigured(
            f"The Web Connector refuses IP addresses in AppURL ({host}); set QBSYNC_PUBLIC_URL to an https domain."
        )
    except ValueError:
        pass
    if parts.scheme != "https" and host != "localhost":
        raise NotConfigured(
            f"The Web Connector needs an https AppURL (got {parts.scheme}://{host}); set QBSYNC_PUBLIC_URL."
        )
    netloc = host + (f":{parts.port}" if parts.port else "")
    base = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return f"{base}/qbwc", f"{base}/qbwc/support"


def qwc_document(connector: Connector, public_base_url: str, *, app_name: str = APP_NAME) -> bytes:
    app_url, support_url = web_connector_urls(public_base_url)
    root = etree.Element("QBWCXML")
    # AppName is what the QuickBooks admin authorizes, and two connectors on one PC must differ in it.
    fields = [
        ("AppName", f"{app_name} - {connector.name}"[:64]),
        ("AppID", ""),
        ("AppURL", app_url),
        ("AppDescription", f"{app_name}: sync with QuickBooks ({connector.name})"[:80]),
        ("AppSupport", support_url),
        ("UserName", connector.username),
        ("OwnerID", connector.owner_id),
        ("FileID", connector.file_id),
        ("QBType", "QBFS"),
    ]
    for tag, text in fields:
        etree.SubElement(root, tag).text = text
    scheduler = etree.SubElement(root, "Scheduler")
    etree.SubElement(scheduler, "RunEveryNMinutes").text = str(connector.run_every_minutes)
    etree.SubElement(root, "IsReadOnly").text = "false"
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True))


def qwc_filename(connector: Connector) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in connector.name).strip("-") or "connector"
    return f"qbsync-{safe[:40]}.qwc"
