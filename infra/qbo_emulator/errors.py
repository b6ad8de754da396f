"""Intuit fault bodies (JSON and XML) and the exception that carries them through the emulator.

Codes and wording follow ../shared/reference/qbo (NOTES.md, errors/, examples/batch.examples.json). Where no
reference gives the exact text the constant says so (``# guessed``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.etree import ElementTree as ET

#: QBO answers in the company's local time; a fixed non-UTC offset makes clients that ignore offsets fail loudly.
QBO_TZ = timezone(timedelta(hours=-8))
XML_NS = "http://schema.intuit.com/finance/v3"

INACTIVE_DETAIL = (
    "Something you're trying to use has been made inactive. Check the fields with accounts, customers, items, "
    "vendors or employees."
)


def iso_time(epoch: float, *, millis: bool = False) -> str:
    """``2015-07-24T10:48:27-08:00`` (``millis`` adds ``.082`` like the envelope ``time`` field)."""
    moment = datetime.fromtimestamp(epoch, QBO_TZ)
    if millis:
        return moment.isoformat(timespec="milliseconds")
    return moment.isoformat(timespec="seconds")


def parse_iso(text: str) -> datetime:
    """Parse an ISO date/datetime; naive values are taken as QBO local time (as Intuit does)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=QBO_TZ)
    return moment


class QboFault(Exception):
    """One Intuit fault: raised anywhere in request handling and rendered by the server."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str = "",
        *,
        status: int = 400,
        fault_type: str = "ValidationFault",
        element: str = "",
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status
        self.fault_type = fault_type
        self.element = element

    def fault_dict(self) -> dict[str, Any]:
        """The ``Fault`` object as it appears in a response or in a ``BatchItemResponse`` item."""
        return {
            "Error": [{"Message": self.message, "Detail": self.detail, "code": self.code, "element": self.element}],
            "type": self.fault_type,
        }

    def json_body(self, now: float) -> bytes:
        return json.dumps({"Fault": self.fault_dict(), "time": iso_time(now, millis=True)}).encode()

    def xml_body(self, now: float) -> bytes:
        root = ET.Element("IntuitResponse", {"xmlns": XML_NS, "time": iso_time(now, millis=True)})
        fault = ET.SubElement(root, "Fault", {"type": self.fault_type})
        attrs = {"code": self.code}
        if self.element:
            attrs["element"] = self.element
        error = ET.SubElement(fault, "Error", attrs)
        ET.SubElement(error, "Message").text = self.message
        ET.SubElement(error, "Detail").text = self.detail
        head = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        return head + bytes(ET.tostring(root, encoding="utf-8", xml_declaration=False))


class AuthFault(QboFault):
    """401/403 from the gateway: Intuit uses lower-case ``fault``/``error`` keys here (errors/issue_thread_*)."""

    def json_body(self, now: float) -> bytes:
        body: dict[str, Any] = {
            "warnings": None,
            "intuitObject": None,
            "fault": {
                "error": [{"message": self.message, "detail": self.detail, "code": self.code, "element": None}],
                "type": self.fault_type,
            },
            "report": None,
            "queryResponse": None,
            "batchItemResponse": [],
            "attachableResponse": [],
            "syncErrorResponse": None,
            "requestId": None,
            "time": int(now * 1000),
            "status": None,
            "cdcresponse": [],
        }
        return json.dumps(body).encode()


# ---- constructors -------------------------------------------------------------------------------------------


def authentication_failed(detail: str) -> AuthFault:
    return AuthFault(
        "3200",
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        detail,
        status=401,
        fault_type="AUTHENTICATION",
    )


def authorization_failed(detail: str) -> AuthFault:
    return AuthFault(
        "3100",
        "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
        detail,
        status=403,
        fault_type="SERVICE",
    )


def throttled() -> QboFault:
    return QboFault(
        "3001",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "The request limit was reached.  Try again later",
        status=429,
        fault_type="SERVICE",
    )


def object_not_found(entity: str, entity_id: str) -> QboFault:
    return QboFault("610", "Object Not Found", f"Object Not Found : {INACTIVE_DETAIL}", element=f"{entity}.Id")


def invalid_reference(element: str, ref_id: str) -> QboFault:
    # 2500 is "not verified" in NOTES.md (appears only in an unattributed fake); the wording is guessed.
    return QboFault(
        "2500", "Invalid Reference Id", f"Invalid Reference Id : {element} id {ref_id} not found", element=element
    )


def required_missing(name: str) -> QboFault:
    return QboFault(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {name} is missing in the request",
        element=name,
    )


def invalid_property(detail: str) -> QboFault:
    return QboFault("2010", "Request has invalid or unsupported property", detail)  # guessed wording


def stale_object() -> QboFault:
    return QboFault(
        "5010",
        "Stale Object Error",
        "Stale Object Error : You and root were working on this at the same time. root finished before you did, "
        "so your work was not saved.",
    )


def duplicate_name(what: str) -> QboFault:
    return QboFault(
        "6240",
        "Duplicate Name Exists Error",
        f"The name supplied already exists. : Another {what} is already using this name. Please use a different name.",
    )


#: NOTES.md: Intuit's blog says 6210, public test files quote 6140 with this detail. We answer 6140.
DUPLICATE_DOC_NUMBER_CODE = "6140"


def duplicate_doc_number(doc_number: str, txn_type: str, txn_id: str) -> QboFault:
    return QboFault(
        DUPLICATE_DOC_NUMBER_CODE,
        "Duplicate Document Number Error",
        f"Duplicate Document Number Error : You must specify a different number. This number has already been "
        f"used. DocNumber={doc_number} is assigned to TxnType={txn_type} with TxnId={txn_id}",
    )


def business_validation(detail: str) -> QboFault:
    """6000 with Intuit's generic message; the ``Business Validation Error: …`` details are guessed."""
    return QboFault(
        "6000",
        "A business validation error has occurred while processing your request",
        f"Business Validation Error: {detail}",
    )


def query_error(detail: str) -> QboFault:
    return QboFault("4000", "Error parsing query", f"QueryParserError: {detail}")


def unsupported(detail: str) -> QboFault:
    return QboFault("500", "Unsupported Operation", detail)


def system_failure(status: int) -> QboFault:
    return QboFault(
        "10000",
        "An application error has occurred while processing your request",
        f"System Failure Error: An unexpected error occurred (HTTP {status})",
        status=status,
        fault_type="SystemFault",
    )
