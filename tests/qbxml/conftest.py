"""Fixtures for the qbXML layer: reference material read (never copied) from ../shared/reference."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree  # type: ignore[import-untyped]

from qbsync.qbxml.xsd import find_xsd, load_schema

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference"
CAPTURES = REFERENCE / "qbwc" / "captures"


def reference_file(*parts: str) -> Path:
    path = REFERENCE.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"reference file {path} not available")
    return path


def _schema(version: str) -> etree.XMLSchema:
    if find_xsd(version) is None:
        where = os.environ.get("QBXML_XSD_DIR") or str(REFERENCE / "qbxml" / "xsd")
        pytest.skip(f"qbXML {version} XSD not found under {where} (set QBXML_XSD_DIR)")
    return load_schema(version)


@pytest.fixture(scope="session")
def schema130() -> etree.XMLSchema:
    return _schema("130")


@pytest.fixture(scope="session")
def schema160() -> etree.XMLSchema:
    return _schema("160")
