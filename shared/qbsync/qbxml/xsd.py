"""Validation of outgoing qbXML against Intuit's XSDs (used by the tests; optional at runtime).

The XSDs are not shipped with qbsync (Intuit licence). They are looked up in ``$QBXML_XSD_DIR`` (a directory
holding ``qbxml130/``, ``qbxml160/``... or directly ``qbxmlops130.xsd``), else in the reference checkout next to
the repository (``../shared/reference/qbxml/xsd``). Runtime callers should gate validation behind a setting and
treat :class:`XsdUnavailable` as "skip".
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from lxml import etree

from qbsync.qbxml.errors import QbxmlError
from qbsync.qbxml.safexml import parse_xml


class XsdUnavailable(QbxmlError):
    code, title = "qbxml_xsd_unavailable", "qbXML XSD not available"


def _candidates(version: str) -> list[Path]:
    roots: list[Path] = []
    env = os.environ.get("QBXML_XSD_DIR")
    if env:
        roots.append(Path(env))
    # shared/qbsync/qbxml/xsd.py → parents[3] is the repository root.
    roots.append(Path(__file__).resolve().parents[3] / ".." / "shared" / "reference" / "qbxml" / "xsd")
    out: list[Path] = []
    for root in roots:
        out.append(root / f"qbxml{version}" / f"qbxmlops{version}.xsd")
        out.append(root / f"qbxmlops{version}.xsd")
    return out


def find_xsd(version: str = "130") -> Path | None:
    """Path of ``qbxmlops<version>.xsd`` (``version`` like ``"130"``), or None when not available."""
    return next((p for p in _candidates(version) if p.is_file()), None)


@functools.lru_cache(maxsize=4)
def load_schema(version: str = "130") -> etree.XMLSchema:
    """Load (once per process) the qbXML ops schema; raises :class:`XsdUnavailable` when absent."""
    path = find_xsd(version)
    if path is None:
        raise XsdUnavailable(f"qbxmlops{version}.xsd not found (set QBXML_XSD_DIR)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(path), parser=parser))


def validation_errors(document: str | bytes | etree._Element, version: str = "130") -> list[str]:
    """Schema errors of a message set (``[]`` when valid)."""
    schema = load_schema(version)
    root = document if isinstance(document, etree._Element) else parse_xml(document)
    if schema.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
