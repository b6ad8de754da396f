"""QuickBooks Online faults: parsing Intuit's error bodies and mapping them to domain errors with stable codes.

Intuit reports errors as a ``Fault`` holding one or more ``Error``s, each with a numeric ``code``, ``Message``,
``Detail`` and ``element``. The same fault arrives in several shapes, all handled by :func:`parse_fault`:

* JSON ``{"Fault": {"Error": [{"Message", "Detail", "code", "element"}], "type"}, "time"}``;
* JSON with lower-case keys (``fault``/``error``/``message``…), seen on 401/403 bodies;
* XML ``<IntuitResponse><Fault type=…><Error code=… element=…><Message/><Detail/></Error></Fault>``, with or
  without the namespace and the ``IntuitResponse`` wrapper (throttling comes back as XML even when JSON was asked);
* any of these inside an HTTP **200** body (Intuit documents that 200 can carry a Fault, e.g. 6190).

:func:`error_for` picks the exception: by Intuit code first, then by fault ``type``, then by HTTP status. Every
exception keeps the Intuit code/message/detail/element, the HTTP status and the ``intuit_tid`` response header
(what Intuit support asks for), and :meth:`QboError.log_fields` gives what to log (never a token).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from qbsync.errors import QbsyncError


@dataclass(frozen=True)
class QboFault:
    """One ``Error`` of an Intuit ``Fault``."""

    code: str
    message: str
    detail: str | None = None
    element: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "message": self.message, "detail": self.detail, "element": self.element}


@dataclass(frozen=True)
class ParsedFault:
    type: str | None
    errors: tuple[QboFault, ...]


class QboError(QbsyncError):
    """Base of every error from the QuickBooks Online API. ``code`` is stable; ``intuit_code`` is Intuit's.

    ``retryable`` says whether sending the *same* request again later can succeed (the SQS worker returns the
    message to the queue); ``status`` is how qbsync's own API would render the error (upstream failures → 502).
    """

    code, status, title = "qbo_error", 502, "QuickBooks Online error"
    retryable = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        faults: tuple[QboFault, ...] | list[QboFault] = (),
        fault_type: str | None = None,
        http_status: int | None = None,
        intuit_tid: str | None = None,
    ) -> None:
        self.faults = tuple(faults)
        first = self.faults[0] if self.faults else None
        self.fault_type = fault_type
        self.http_status = http_status
        self.intuit_tid = intuit_tid
        self.intuit_code = first.code if first else None
        self.intuit_message = first.message if first else None
        self.intuit_detail = first.detail if first else None
        self.intuit_element = first.element if first else None
        text = detail or _describe(first) or self.title
        super().__init__(text, extra=self._extra())

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "intuit_code": self.intuit_code,
            "intuit_message": self.intuit_message,
            "intuit_detail": self.intuit_detail,
            "intuit_element": self.intuit_element,
            "intuit_tid": self.intuit_tid,
            "http_status": self.http_status,
        }
        if len(self.faults) > 1:
            extra["intuit_errors"] = [f.as_dict() for f in self.faults]
        return {k: v for k, v in extra.items() if v is not None}

    def log_fields(self) -> dict[str, Any]:
        """Structured fields for a log line: our code plus everything Intuit told us (no secrets in there)."""
        return {"error_code": self.code, "error": self.detail, "fault_type": self.fault_type, **self._extra()}


class AuthenticationFailed(QboError):
    """401 / 3200 (also 100, 120): the access token is expired or revoked. The client refreshes once, then gives
    up: the connection needs re-authorisation."""

    code, title = "qbo_authentication_failed", "QuickBooks Online authentication failed"


class Forbidden(QboError):
    """403 / 3100: the app is not authorised for this company (scope, subscription, user lost access)."""

    code, title = "qbo_forbidden", "QuickBooks Online refused access"


class Throttled(QboError):
    """429 / 3001 ThrottleExceeded (or our own per-realm budget). ``retry_after`` is in seconds."""

    code, status, title = "qbo_throttled", 429, "QuickBooks Online throttled the request"
    retryable = True
    DEFAULT_RETRY_AFTER = 60.0  # Intuit: "on 429, wait 60 s"

    def __init__(self, detail: str | None = None, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = self.DEFAULT_RETRY_AFTER if retry_after is None else max(0.0, float(retry_after))
        super().__init__(detail, **kwargs)

    def _extra(self) -> dict[str, Any]:
        return {**super()._extra(), "retry_after": self.retry_after}


class RealmBudgetExhausted(Throttled):
    """Our own per-realm limiter could not admit the call within its bounded wait (QBO was not called)."""

    code, title = "qbo_realm_budget_exhausted", "Per-realm QuickBooks Online request budget exhausted"


class StaleObject(QboError):
    """5010: the SyncToken sent is not the current one (someone else changed the object)."""

    code, status, title = "qbo_stale_object", 409, "QuickBooks Online object changed concurrently"


class DuplicateName(QboError):
    """6240: the name is taken (DisplayName is shared by Customer, Vendor and Employee)."""

    code, status, title = "qbo_duplicate_name", 409, "QuickBooks Online name already exists"


class DuplicateDocNumber(QboError):
    """6140 (seen in public test files) / 6210 (Intuit's blog): the DocNumber is already used."""

    code, status, title = "qbo_duplicate_doc_number", 409, "QuickBooks Online document number already exists"


class InvalidReference(QboError):
    """610 Object Not Found (a referenced object is missing or inactive); 2500 Invalid Reference Id (unverified)."""

    code, status, title = "qbo_invalid_reference", 422, "QuickBooks Online reference is invalid"


class ValidationFault(QboError):
    """2xxx request validation (e.g. 2020 required parameter missing) and 6000 business validation."""

    code, status, title = "qbo_validation", 422, "QuickBooks Online rejected the data"


class CompanyStatusInvalid(QboError):
    """6190 Invalid Company Status: subscription ended, cancelled or billing problem. Pause the realm."""

    code, status, title = "qbo_company_status", 409, "QuickBooks Online company cannot accept data"


class ResultSetTooBig(QboError):
    """10100: the query/report result is too large; narrow it."""

    code, status, title = "qbo_result_too_big", 422, "QuickBooks Online result set too big"


class ServiceUnavailable(QboError):
    """5xx, or no HTTP response at all (connection error, timeout): try again later."""

    code, status, title = "qbo_unavailable", 503, "QuickBooks Online unavailable"
    retryable = True


class UnexpectedResponse(QboError):
    """A response qbsync cannot understand (not JSON, missing the expected entity…)."""

    code, title = "qbo_unexpected_response", "Unexpected QuickBooks Online response"


_BY_CODE: dict[str, type[QboError]] = {
    "100": AuthenticationFailed,
    "120": AuthenticationFailed,
    "3200": AuthenticationFailed,
    "3100": Forbidden,
    "3001": Throttled,
    "5010": StaleObject,
    "6240": DuplicateName,
    "6140": DuplicateDocNumber,
    "6210": DuplicateDocNumber,
    "610": InvalidReference,
    "2500": InvalidReference,
    "6000": ValidationFault,
    "6190": CompanyStatusInvalid,
    "10100": ResultSetTooBig,
}

_BY_TYPE: dict[str, type[QboError]] = {
    "validationfault": ValidationFault,
    "authentication": AuthenticationFailed,
    "authenticationfault": AuthenticationFailed,
    "authorizationfault": Forbidden,
}


def _class_for_code(code: str) -> type[QboError] | None:
    found = _BY_CODE.get(code)
    if found is not None:
        return found
    if code.isdigit() and 2000 <= int(code) < 3000:  # 2010 invalid property, 2020 required param, 2050…
        return ValidationFault
    return None


def _class_for_status(status: int | None) -> type[QboError]:
    if status == 401:
        return AuthenticationFailed
    if status == 403:
        return Forbidden
    if status == 429:
        return Throttled
    if status is not None and status >= 500:
        return ServiceUnavailable
    if status in (400, 422):
        return ValidationFault
    return QboError


def error_for(
    parsed: ParsedFault | None,
    *,
    http_status: int | None,
    intuit_tid: str | None = None,
    retry_after: float | None = None,
    detail: str | None = None,
) -> QboError:
    """The domain error for a fault (or for a bare HTTP status when the body had none).

    With several ``Error``s the first one with a known code decides; all are kept on ``faults``.
    """
    faults = parsed.errors if parsed else ()
    fault_type = parsed.type if parsed else None
    cls: type[QboError] | None = None
    for fault in faults:
        cls = _class_for_code(fault.code)
        if cls is not None:
            # put the deciding error first so intuit_code/message describe it
            faults = (fault, *(f for f in faults if f is not fault))
            break
    if cls is None and fault_type:
        cls = _BY_TYPE.get(fault_type.lower())
    if cls is None or (cls is ValidationFault and http_status is not None and http_status >= 500):
        cls = _class_for_status(http_status)
    kwargs: dict[str, Any] = {
        "faults": faults,
        "fault_type": fault_type,
        "http_status": http_status,
        "intuit_tid": intuit_tid,
    }
    if issubclass(cls, Throttled):
        return cls(detail, retry_after=retry_after, **kwargs)
    return cls(detail, **kwargs)


# --- parsing -------------------------------------------------------------------------------------------------------


def _describe(fault: QboFault | None) -> str | None:
    if fault is None:
        return None
    text = fault.message
    if fault.detail and fault.detail != fault.message:
        text = f"{text}: {fault.detail}"
    return f"[{fault.code}] {text}"


def _get(mapping: dict[str, Any], name: str) -> Any:
    """``mapping[name]`` ignoring the case of the key (Intuit sends both ``Fault`` and ``fault``)."""
    if name in mapping:
        return mapping[name]
    lower = name.lower()
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() == lower:
            return value
    return None


def _opt_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def fault_from_json(body: Any) -> ParsedFault | None:
    """The ``Fault`` of a decoded JSON body (any key case), or ``None`` if it carries none."""
    if not isinstance(body, dict):
        return None
    fault = _get(body, "Fault")
    if not isinstance(fault, dict):
        return None
    raw_errors = _get(fault, "Error")
    if isinstance(raw_errors, dict):
        raw_errors = [raw_errors]
    errors: list[QboFault] = []
    for raw in raw_errors if isinstance(raw_errors, list) else []:
        if not isinstance(raw, dict):
            continue
        code = _opt_text(_get(raw, "code")) or ""
        errors.append(
            QboFault(
                code=code.lstrip("0") or code,
                message=_opt_text(_get(raw, "Message")) or "",
                detail=_opt_text(_get(raw, "Detail")),
                element=_opt_text(_get(raw, "element")),
            )
        )
    return ParsedFault(type=_opt_text(_get(fault, "type")), errors=tuple(errors))


_XML_START = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?<", re.IGNORECASE)


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def fault_from_xml(text: str | bytes) -> ParsedFault | None:
    """The ``Fault`` of an XML body (``IntuitResponse`` wrapper and namespace optional), or ``None``."""
    from qbsync.qbxml.errors import QbxmlParseError
    from qbsync.qbxml.safexml import parse_xml  # hardened: no DTD, no entities, no network

    try:
        root = parse_xml(text)
    except QbxmlParseError:
        return None
    fault_el = root if _local(root.tag) == "Fault" else None
    if fault_el is None:
        fault_el = next((el for el in root.iter() if _local(el.tag) == "Fault"), None)
    if fault_el is None:
        return None
    errors: list[QboFault] = []
    for error_el in fault_el:
        if _local(error_el.tag) != "Error":
            continue
        fields = {_local(child.tag): (child.text or "") for child in error_el}
        code = (error_el.get("code") or "").strip()
        errors.append(
            QboFault(
                code=code.lstrip("0") or code,
                message=(fields.get("Message") or "").strip(),
                detail=_opt_text(fields.get("Detail")),
                element=_opt_text(error_el.get("element")),
            )
        )
    return ParsedFault(type=_opt_text(fault_el.get("type")), errors=tuple(errors))


def parse_fault(body: str | bytes | Any) -> ParsedFault | None:
    """A fault from a raw body (JSON text, XML text) or an already decoded JSON value; ``None`` if none."""
    if isinstance(body, bytes | bytearray):
        raw = bytes(body)
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return fault_from_xml(raw)
    if isinstance(body, str):
        if _XML_START.match(body):
            return fault_from_xml(body)
        try:
            body = json.loads(body)
        except ValueError:
            return None
    return fault_from_json(body)
