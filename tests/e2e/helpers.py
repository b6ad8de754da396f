"""Helpers the e2e modules share."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def run_wc_sim(base: str, username: str, password: str, company_state: Path) -> str:
    """One scheduled Web Connector run through the `qbsync wc-sim` command (qbXML validated against the XSD)."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "qbsync.cli",
            "wc-sim",
            "--url",
            f"{base}/qbwc",
            "--user",
            username,
            "--password",
            password,
            "--company-state",
            str(company_state),
            "--validate-xsd",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout
