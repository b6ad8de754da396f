"""One registry of operations drives three things: the Chalice routes, request validation, and /openapi.json.

A view is registered with ``@api.route(path, method, auth=..., request=Model, response=Model)`` and receives a
:class:`RequestContext` whose ``body`` is already validated, whose ``tenant`` is already authenticated, and whose
errors are all rendered by one mapper (:func:`qbsync.api.http.problem_response`).
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError
from chalice.app import Chalice, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from qbsync import __version__
from qbsync.api.http import (
    CHALICE_CODES,
    PROBLEM_JSON,
    RequestContext,
    check_body_size,
    json_response,
    problem_response,
)
from qbsync.api.services import Services, get_services
from qbsync.errors import QbsyncError, ServiceBusy, ValidationFailed
from qbsync.models import Problem, validate_model
from qbsync.observability import get_logger, get_metrics
from qbsync.store.ports import Tenant

Auth = Literal["none", "admin", "tenant"]
# What AWS answers when a request rate is over the limit, once botocore's own retries are spent.
AWS_THROTTLING_CODES = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "Throttling"}
)
BodyKind = Literal["none", "model", "object", "json", "raw"]
View = Callable[..., Any]


@dataclass(frozen=True)
class QueryParam:
    name: str
    description: str
    type: str = "string"


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    name: str
    summary: str
    auth: Auth
    request: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    tag: str
    body: BodyKind
    query: tuple[QueryParam, ...] = ()
    response_media_type: str = "application/json"
    max_body_bytes: int | None = None  # None: the settings' cap for JSON bodies
    schema: type[BaseModel] | None = None  # documents a "json" body (validated by the view)
    document: bool = True  # False: served, but not part of the REST API's OpenAPI document (the console's pages)


@dataclass
class ViewContext:
    """What a view receives: the request, the validated body, the caller's tenant and the use cases."""

    request: RequestContext
    services: Services
    body: Any = None

    @property
    def tenant(self) -> Any:
        return self.request.tenant


class RestApi:
    def __init__(self, app: Chalice, *, title: str, description: str) -> None:
        self.app = app
        self.title = title
        self.description = description
        self.operations: list[Operation] = []
        self._views: dict[str, tuple[Operation, View]] = {}
        app.register_middleware(self._problem_middleware, "http")

    def route(
        self,
        path: str,
        method: str,
        *,
        summary: str,
        auth: Auth = "tenant",
        request: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        status: int = 200,
        tag: str = "",
        body: BodyKind | None = None,
        query: tuple[QueryParam, ...] = (),
        response_media_type: str = "application/json",
        max_body_bytes: int | None = None,
        schema: type[BaseModel] | None = None,
        document: bool = True,
    ) -> Callable[[View], View]:
        def decorator(view: View) -> View:
            operation = Operation(
                path=path,
                method=method.upper(),
                name=view.__name__,
                summary=summary,
                auth=auth,
                request=request,
                response=response,
                status=status,
                tag=tag or path.strip("/").split("/")[-1].split("{")[0] or "service",
                body=body or ("model" if request is not None else "none"),
                query=query,
                response_media_type=response_media_type,
                max_body_bytes=max_body_bytes,
                schema=schema,
                document=document,
            )
            self.operations.append(operation)
            self._views[view.__name__] = (operation, view)

            @functools.wraps(view)
            def chalice_view(**path_params: str) -> Response:
                return self._dispatch(operation, view, path_params)

            # content_types=*/*: we check the media type ourselves so the error is problem+json.
            self.app.route(path, methods=[operation.method], content_types=["*/*"], name=view.__name__)(chalice_view)
            return view

        return decorator

    def _dispatch(self, operation: Operation, view: View, path_params: dict[str, str]) -> Response:
        logger = get_logger()
        request = self.app.current_request
        assert request is not None
        request_id = str(request.context.get("requestId") or uuid.uuid4())
        started = time.perf_counter()
        logger.thread_safe_append_keys(request_id=request_id, route=f"{operation.method} {operation.path}")
        try:
            services = get_services()
            headers = {k.lower(): v for k, v in request.headers.items()}
            limit = operation.max_body_bytes or services.settings.max_body_bytes
            check_body_size(headers, 0, limit)  # before touching the body
            raw = request.raw_body or b""
            raw_body = raw if isinstance(raw, bytes) else raw.encode("utf-8")
            check_body_size(headers, len(raw_body), limit)
            ctx = RequestContext(
                method=operation.method,
                path=request.context.get("path") or operation.path,
                headers=headers,
                query={k: v for k, v in (request.query_params or {}).items()},
                path_params=path_params,
                body=raw_body,
                request_id=request_id,
                public_base_url=_public_base_url(services, request.context, headers),
            )
            if operation.auth == "admin":
                services.admin.check(ctx.bearer_token())
            elif operation.auth == "tenant":
                ctx.tenant = services.tenants.authenticate(ctx.bearer_token())
                logger.thread_safe_append_keys(tenant_id=ctx.tenant.tenant_id)
            parsed = _parse_body(operation, ctx.json) if operation.body in ("model", "object", "json") else None
            result = view(ViewContext(request=ctx, services=services, body=parsed), **path_params)
            response = result if isinstance(result, Response) else json_response(result, operation.status)
        except QbsyncError as error:
            log = logger.error if error.status >= 500 else logger.info
            log("request refused", extra={"code": error.code, "status": error.status})
            response = problem_response(error, request_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in AWS_THROTTLING_CODES:
                logger.exception("unhandled error")
                response = problem_response(QbsyncError("An internal error occurred."), request_id)
            else:
                logger.warning("aws throttled", extra={"operation": exc.operation_name})
                busy = ServiceBusy("qbsync's storage is busy; nothing was lost. Retry the same request shortly.")
                response = problem_response(busy, request_id)
                response.headers["Retry-After"] = "2"
        except Exception:
            logger.exception("unhandled error")
            response = problem_response(QbsyncError("An internal error occurred."), request_id)
        finally:
            logger.thread_safe_remove_keys(["request_id", "route", "tenant_id"])
        response.headers["X-Request-Id"] = request_id
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.debug("request done", extra={"status": response.status_code, "ms": round(elapsed_ms, 2)})
        return response

    def invoke(
        self,
        name: str,
        *,
        tenant: Tenant,
        services: Services,
        public_base_url: str,
        request_id: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        **path_params: str,
    ) -> Any:
        """Run the tenant operation ``name`` for an already authenticated ``tenant``: the same body validation and
        the same view as its HTTP route, without the HTTP. The admin console works through this (issue 10), so it
        can do nothing the public REST API cannot. Errors are raised (``QbsyncError``), not rendered."""
        operation, view = self._views[name]
        if operation.auth != "tenant":
            raise ValueError(f"{name} is not a tenant operation")
        ctx = RequestContext(
            method=operation.method,
            path=operation.path,
            headers={"content-type": "application/json"},
            query=dict(query or {}),
            path_params=path_params,
            body=b"",
            request_id=request_id,
            public_base_url=public_base_url,
            tenant=tenant,
        )
        parsed = _parse_body(operation, lambda: body) if operation.body in ("model", "object", "json") else None
        return view(ViewContext(request=ctx, services=services, body=parsed), **path_params)

    @staticmethod
    def _problem_middleware(event: Any, get_response: Callable[[Any], Response]) -> Response:
        """Chalice's own errors (405, 415, unhandled) become problem+json like ours."""
        response = get_response(event)
        body = response.body
        if response.status_code >= 400 and isinstance(body, dict) and set(body) == {"Code", "Message"}:
            code, title = CHALICE_CODES.get(str(body["Code"]), ("error", "Error"))
            problem = Problem(title=title, status=response.status_code, detail=str(body["Message"]), code=code)
            response.body = problem.model_dump_json(exclude_none=True)
            response.headers["Content-Type"] = PROBLEM_JSON
        if response.status_code >= 500:
            get_metrics().add_metric(name="ApiServerErrors", unit="Count", value=1)
        return response

    # --- OpenAPI -------------------------------------------------------------------------------------------

    def openapi(self) -> dict[str, Any]:
        models: set[type[BaseModel]] = {Problem}
        documented = [op for op in self.operations if op.document]
        for op in documented:
            models.update(m for m in (op.request, op.response, op.schema) if m is not None)
        ordered = sorted(models, key=lambda m: m.__name__)
        _, schema = models_json_schema(
            [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
        )
        components = schema.get("$defs", {})
        paths: dict[str, dict[str, Any]] = {}
        for op in documented:
            item: dict[str, Any] = {
                "operationId": op.name,
                "summary": op.summary,
                "tags": [op.tag],
                "parameters": [
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in re.findall(r"{([^}+]+)\+?}", op.path)
                ]
                + [
                    {
                        "name": q.name,
                        "in": "query",
                        "required": False,
                        "description": q.description,
                        "schema": {"type": q.type},
                    }
                    for q in op.query
                ],
                "responses": {
                    str(op.status): _media(op.response, op.response_media_type, "Success"),
                    "default": _media(Problem, PROBLEM_JSON, "Error (RFC 9457 problem details with a stable code)"),
                },
            }
            if op.auth != "none":
                item["security"] = [{"bearer": []}]
                item["description"] = "Admin key required." if op.auth == "admin" else "Tenant API key required."
            if op.body == "model" and op.request is not None:
                item["requestBody"] = {"required": True, **_media(op.request, "application/json", "")}
            elif op.body == "json" and op.schema is not None:
                schema = {"$ref": f"#/components/schemas/{op.schema.__name__}"}
                item["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"oneOf": [schema, {"type": "array", "items": schema}]}}
                    },
                    "description": "One record or a list of up to 500.",
                }
            elif op.body == "raw":
                item["requestBody"] = {"required": True, "content": {op.response_media_type: {}}}
            elif op.body == "object":
                item["requestBody"] = {
                    "required": True,
                    "content": {"application/merge-patch+json": {"schema": {"type": "object"}}},
                    "description": "JSON merge patch (RFC 7396): null restores a field's default.",
                }
            paths.setdefault(op.path, {})[op.method.lower()] = item
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": __version__, "description": self.description},
            "paths": paths,
            "components": {
                "schemas": components,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
        }

    def openapi_json(self) -> str:
        return json.dumps(self.openapi(), indent=2, sort_keys=False)


def _parse_body(operation: Operation, read: Callable[[], Any]) -> Any:
    """The validated body of a "model", "object" or "json" operation (``read`` gives the decoded JSON)."""
    if operation.body == "model" and operation.request is not None:
        return validate_model(operation.request, read())
    parsed = read()
    if operation.body == "object" and not isinstance(parsed, dict):
        raise ValidationFailed([], "The body must be a JSON object.")
    return parsed


def _media(model: type[BaseModel] | None, media_type: str, description: str) -> dict[str, Any]:
    if model is None:
        return {"description": description or "Success", "content": {media_type: {}}}
    return {
        "description": description or model.__name__,
        "content": {media_type: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
    }


def _public_base_url(services: Services, context: dict[str, Any], headers: dict[str, str]) -> str:
    """The externally visible base URL: configured, else derived from API Gateway's host and stage."""
    if services.settings.public_base_url:
        return services.settings.public_base_url.rstrip("/")
    host = context.get("domainName") or headers.get("host", "127.0.0.1")
    stage = context.get("stage", "")
    scheme = headers.get("x-forwarded-proto") or ("http" if host.startswith(("127.", "localhost")) else "https")
    prefix = f"/{stage}" if stage and stage != "api" and ".execute-api." in host else ""
    return f"{scheme}://{host}{prefix}"
