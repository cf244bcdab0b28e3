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


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    retryable: bool,
    extra: dict[str, Any] | None = None,
    retry_after: str | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "code": code,
        "retryable": retryable,
        **(extra or {}),
    }
    headers = {"Cache-Control": "no-store"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
        body["retry_after"] = int(retry_after)
    return Response(
        content=json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


async def _proxy_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.ProxyError)
    count(f"Http{exc.status}")
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        retryable=exc.retryable,
        extra=exc.extra,
        retry_after=exc.retry_after_header,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "parameter": ".".join(str(p) for p in err.get("loc", ())[1:]) or None,
            "message": err.get("msg"),
        }
        for err in exc.errors()
    ]
    return problem_response(
        request,
        status=422,
        code="invalid_request",
        title="The request is not valid",
        detail="; ".join(f"{p['parameter']}: {p['message']}" for p in problems),
        retryable=False,
        extra={"errors": problems},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    response = problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=str(exc.detail),
        detail=f"{request.method} {request.url.path}: {exc.detail}",
        retryable=False,
    )
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def unexpected(request: Request) -> Response:
    """The answer to a bug (not something a client or an exchange did): logged, counted."""
    logger.exception("unhandled error", extra={"path": request.url.path})
    count("Http500")
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title="Internal error",
        detail="The proxy failed unexpectedly; the failure has been logged.",
        retryable=True,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.ProxyError, _proxy_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    # Anything else is answered by the correlation middleware, with `unexpected`.


def describe() -> list[dict[str, Any]]:
    """Every problem code this service answers with, for ``GET /problems``."""
    seen = {
        kind.code: {
            "code": kind.code,
            "status": kind.status,
            "title": kind.title,
            "retryable": kind.retryable,
        }
        for kind in errors.kinds()
    }
    for code, status, title in (
        ("invalid_request", 422, "The request is not valid"),
        ("not_found", 404, "No such route"),
        ("method_not_allowed", 405, "Method not allowed"),
        ("internal_error", 500, "Internal error"),
    ):
        seen[code] = {"code": code, "status": status, "title": title, "retryable": status == 500}
    return sorted(seen.values(), key=lambda p: p["code"])
