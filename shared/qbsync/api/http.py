"""Request parsing and response rendering for the REST API: size caps, JSON, auth headers, problem+json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalice.app import Response
from pydantic import BaseModel

from qbsync.errors import MalformedJson, PayloadTooLarge, QbsyncError, Unauthorized, UnsupportedMediaType
from qbsync.models import Problem
from qbsync.store.ports import Tenant

PROBLEM_JSON = "application/problem+json"
JSON_TYPES = ("application/json", "application/problem+json", "application/merge-patch+json")


@dataclass
class RequestContext:
    """What a view needs from the HTTP request, decoupled from Chalice."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    path_params: dict[str, str]
    body: bytes
    request_id: str
    public_base_url: str
    tenant: Tenant | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def bearer_token(self) -> str:
        value = self.header("authorization")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send the key as 'Authorization: Bearer <key>'.")
        return token.strip()

    def json(self) -> Any:
        """The body parsed as JSON. 415 for another media type, 400 with the position for malformed JSON."""
        content_type = self.header("content-type").split(";")[0].strip().lower()
        if content_type and content_type not in JSON_TYPES:
            raise UnsupportedMediaType(f"Expected application/json, got {content_type}.")
        if not self.body.strip():
            raise MalformedJson("The request body is empty; a JSON document is required.")
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedJson(f"The body is not valid UTF-8 (byte {exc.start}).") from None
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise MalformedJson(f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.") from None
        except ValueError as exc:
            raise MalformedJson(f"Malformed JSON: {exc}.") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def check_body_size(headers: dict[str, str], body_length: int, limit: int) -> None:
    declared = headers.get("content-length", "")
    if (declared.isdigit() and int(declared) > limit) or body_length > limit:
        size = max(body_length, int(declared) if declared.isdigit() else 0)
        raise PayloadTooLarge(f"The request body is {size} bytes; the limit is {limit} bytes.")


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(payload, BaseModel):
        body = payload.model_dump_json()
    else:
        body = json.dumps(payload, separators=(",", ":"), default=str)
    return Response(body=body, status_code=status, headers={"Content-Type": "application/json", **(headers or {})})


def problem_response(error: QbsyncError, request_id: str | None = None) -> Response:
    problem = Problem(
        title=error.title,
        status=error.status,
        detail=error.detail,
        code=error.code,
        request_id=request_id,
        errors=error.extra.get("errors"),
    )
    headers: dict[str, str | list[str]] = {"Content-Type": PROBLEM_JSON, "Cache-Control": "no-store"}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="qbsync"'
    return Response(body=problem.model_dump_json(exclude_none=True), status_code=error.status, headers=headers)


# Chalice answers some requests itself (unknown method, unsupported media type, unhandled error) with a body of
# {"Code": ..., "Message": ...}. These map those to our codes so every error is problem+json.
CHALICE_CODES = {
    "MethodNotAllowedError": ("method_not_allowed", "Method not allowed"),
    "UnsupportedMediaType": ("unsupported_media_type", "Unsupported media type"),
    "BadRequestError": ("bad_request", "Bad request"),
    "NotFoundError": ("not_found", "Not found"),
    "InternalServerError": ("internal_error", "Internal error"),
}
