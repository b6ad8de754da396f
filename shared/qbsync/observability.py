"""Powertools Logger / Metrics / Tracer, built lazily, with secrets redacted from every log record.

Redaction happens in the formatter, after Powertools has merged appended keys and ``extra``, so nothing that
reaches the log output — message text included — can carry a password, API key or token.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

SERVICE = "qbsync"
REDACTED = "***"

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|admin[_-]?key|authorization|credential|cookie|private[_-]?key"
    r"|strPassword|refresh_token|access_token|client_secret|code_verifier)",
    re.IGNORECASE,
)
_SECRET_VALUES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), REDACTED),
    (re.compile(r"\bqbs_[0-9a-f]{16}_[A-Za-z0-9_-]+"), REDACTED),  # qbsync API keys
    (re.compile(r"(?i)(<strPassword>)[^<]*(</strPassword>)"), rf"\1{REDACTED}\2"),  # Web Connector authenticate
    (
        re.compile(r"(?i)\b(password|secret|token|api_key|client_secret|refresh_token|access_token|code)=([^&\s\"']+)"),
        rf"\1={REDACTED}",
    ),
    (
        re.compile(
            r"(?i)(\"(?:password|secret|api_key|token|refresh_token|access_token|client_secret)\"\s*:\s*\")[^\"]*"
        ),
        rf"\1{REDACTED}",
    ),
]


def redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_VALUES:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any, key: str | None = None) -> Any:
    """Return ``value`` with secret-looking keys masked and secret-looking substrings scrubbed."""
    if key is not None and _SECRET_KEY.search(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class RedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: Any) -> str:
        return super().serialize(redact(dict(log)))


@lru_cache(maxsize=1)
def get_logger() -> Logger:
    return Logger(service=SERVICE, logger_formatter=RedactingFormatter(), use_rfc3339=True)


@lru_cache(maxsize=1)
def get_metrics() -> Metrics:
    return Metrics(service=SERVICE, namespace="qbsync")


@lru_cache(maxsize=1)
def get_tracer() -> Tracer:
    return Tracer(service=SERVICE)
