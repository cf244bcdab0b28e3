"""The one place errors become HTTP answers: RFC 9457 ``application/problem+json``."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from market_proxy import errors
from market_proxy.observability import count, logger

PROBLEM_JSON = "application/problem+json"
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, as they are sent: problem+json."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            **({"headers": _RETRY_AFTER} if status in (429, 503) else {}),
        }
        for status in statuses
    }


def render(error: errors.ProxyError, instance: str) -> tuple[str, dict[str, str]]:
    """``error`` as RFC 9457 problem details: the body and the headers (``Content-Type``
    aside) of its answer, counted by status. Every problem answer is made here: the app's
    and the API function's refusal of an event that is no request."""
    count(f"Http{error.status}")
    body = {"type": f"/problems/{error.code}", "instance": instance, **error.problem()}
    headers = {"Cache-Control": "no-store"}
    retry_after = error.retry_after_header
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return json.dumps(body, separators=(",", ":"), default=str), headers


def problem_response(request: Request, error: errors.ProxyError) -> Response:
    """``error`` as the answer to ``request`` (see :func:`render`)."""
    content, headers = render(error, request.url.path)
    return Response(
        content=content, status_code=error.status, headers=headers, media_type=PROBLEM_JSON
    )


async def _proxy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ProxyError)
    return problem_response(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "parameter": ".".join(str(p) for p in err.get("loc", ())[1:]) or None,
            "message": err.get("msg"),
        }
        for err in exc.errors()
    ]
    detail = "; ".join(f"{p['parameter']}: {p['message']}" for p in problems)
    return problem_response(request, errors.InvalidRequest(detail, extra={"errors": problems}))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = f"{request.method} {request.url.path}: {exc.detail}"
    kind = errors.MethodNotAllowed if exc.status_code == 405 else errors.RouteNotFound
    response = problem_response(request, kind(detail))
    if exc.headers:
        response.headers.update(exc.headers)
    allowed = [method.strip() for method in response.headers.get("Allow", "").split(",")]
    if "GET" in allowed and "HEAD" not in allowed:
        # HEAD is served wherever GET is (the app's HeadAsGet), though no route declares it.
        response.headers["Allow"] = ", ".join([*allowed, "HEAD"])
    return response


def unexpected(request: Request) -> Response:
    """The answer to a bug (not something a client or an exchange did): logged, counted."""
    logger.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(
        request,
        errors.InternalError("The proxy failed unexpectedly; the failure has been logged."),
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.ProxyError, _proxy_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    # Anything else is answered by the correlation middleware, with `unexpected`.


def describe() -> list[dict[str, Any]]:
    """Every problem code this service answers with, for ``GET /problems``."""
    described = [
        {"code": kind.code, "status": kind.status, "title": kind.title, "retryable": kind.retryable}
        for kind in errors.kinds()
    ]
    return sorted(described, key=lambda p: p["code"])
