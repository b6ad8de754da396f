"""Errors raised by the qbXML layer. All derive from :class:`qbsync.errors.QbsyncError` so API mappers render them."""

from __future__ import annotations

from qbsync.errors import QbsyncError


class QbxmlError(QbsyncError):
    code, status, title = "qbxml_error", 422, "qbXML error"


class QbxmlFieldError(QbxmlError):
    """A value cannot be put into a qbXML field as-is (too long, too precise, wrong type...).

    ``field`` is the qbXML element name (e.g. ``Name``), ``limit`` the maximum length when the problem is a length.
    The caller decides what to do (truncate with a naming rule, ask the user...); we never truncate silently.
    """

    code, title = "qbxml_field_error", "Invalid qbXML field value"

    def __init__(self, field: str, message: str, *, limit: int | None = None) -> None:
        super().__init__(f"{field}: {message}", extra={"field": field, "limit": limit})
        self.field = field
        self.limit = limit


class QbxmlParseError(QbxmlError):
    """A qbXML document could not be parsed, or was refused (DOCTYPE/entities, wrong root)."""

    code, title = "qbxml_parse_error", "Unparseable qbXML"


class UnsupportedQbxmlVersion(QbxmlError):
    """The QuickBooks on the other side supports no qbXML version we can build."""

    code, title = "qbxml_unsupported_version", "Unsupported qbXML version"
