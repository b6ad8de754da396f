"""A fake QuickBooks Desktop company that processes qbXML, for tests and the Web Connector simulator."""

from infra.fake_qbd.company import (
    FakeCompany,
    FileIDConflictError,
    Invoice,
    JournalEntry,
    ListRecord,
    Payment,
    RequestLogEntry,
)
from infra.fake_qbd.xmlio import (
    HRESULT_COULD_NOT_START,
    HRESULT_OTHER_FILE_OPEN,
    HRESULT_PARSE_ERROR,
    PARSE_ERROR_MESSAGE,
    QBXMLProcessingError,
)

__all__ = [
    "HRESULT_COULD_NOT_START",
    "HRESULT_OTHER_FILE_OPEN",
    "HRESULT_PARSE_ERROR",
    "PARSE_ERROR_MESSAGE",
    "FakeCompany",
    "FileIDConflictError",
    "Invoice",
    "JournalEntry",
    "ListRecord",
    "Payment",
    "QBXMLProcessingError",
    "RequestLogEntry",
]
