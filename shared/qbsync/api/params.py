"""Query-string parameters, validated with the field named on error."""

from __future__ import annotations

from qbsync.errors import FieldError, ValidationFailed


def int_param(query: dict[str, str], name: str, *, default: int, minimum: int, maximum: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise ValidationFailed([FieldError(name, f"must be an integer from {minimum} to {maximum}")])
    return int(raw)


def str_param(query: dict[str, str], name: str, *, max_length: int = 2048) -> str | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_length:
        raise ValidationFailed([FieldError(name, f"must be at most {max_length} characters")])
    return raw
