"""The FastAPI application: the same app under Mangum (API function) and uvicorn (stream
function, ``make run``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from market_proxy import errors, mcp_server
from market_proxy.api import events, openapi, page, problems, reference, routes, streaming
from market_proxy.observability import logger
from market_proxy.service import MarketData

REQUEST_ID_HEADER = "x-request-id"
# Sent with every answer, whatever made it. Error bodies echo what the client sent: no
# browser may read one as HTML or script.
EVERY_ANSWER = {"x-content-type-options": "nosniff"}
_EVERY_ANSWER = [(name.encode(), value.encode()) for name, value in EVERY_ANSWER.items()]
STREAMS = "/sse/"
API_KEY_HEADER = "x-api-key"  # API Gateway's, when ApiKeyRequired
# What a browser page may send and read, beyond CORS's safelisted headers.
_READ_REQUEST_HEADERS = ["If-None-Match", "Last-Event-ID", REQUEST_ID_HEADER, API_KEY_HEADER]
_MCP_REQUEST_HEADERS = [
    "Content-Type",  # application/json is not safelisted
    "Accept",
    REQUEST_ID_HEADER,
    API_KEY_HEADER,
    # What MCP clients send: the handshake era's version and session (never assigned
    # here, but sent by clients that resume), and the 2026-07-28 era's routing headers.
    "MCP-Protocol-Version",
    "Mcp-Session-Id",
    "Last-Event-ID",
    "Mcp-Method",
    "Mcp-Name",
]
_EXPOSED = [
    "ETag",
    "Age",
    "Retry-After",
    "X-Cache",
    "X-Data-Age-Ms",
    "X-Fetched-At",
    "X-Stale-Reason",
    "Allow",
    REQUEST_ID_HEADER,
]
_MCP_EXPOSED = ["Retry-After", "Allow", REQUEST_ID_HEADER, "Mcp-Session-Id"]
# The adapter's request context is a small JSON object; a larger one is not parsed.
_MAX_CONTEXT_BYTES = 8192


def create_app(service: MarketData, *, streams: bool = True) -> FastAPI:
    """The app over ``service``. ``streams``: serve the ``/sse/...`` streams; where answers
    are buffered (Mangum) they could never start, so they are refused at once instead (and
    still documented: the API function serves the OpenAPI document)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Only long-lived servers (uvicorn) run this; Mangum runs with lifespan off.
        yield
        await service.close()

    app = FastAPI(
        lifespan=lifespan,
        # /docs is the page module's: Swagger UI from the app's own files, not a CDN.
        docs_url=None,
        redoc_url=None,
        title="Market data proxy",
        version="1.0",
        description=(
            "Tickers, OHLCV history and live ticker streams from cryptocurrency exchanges, "
            "answered from a cache that says how fresh every answer is."
        ),
    )
    app.state.market = service
    problems.install(app)
    app.include_router(routes.router)
    app.include_router(reference.router)
    app.include_router(streaming.router)
    if not streams:
        # First, so that it matches before the streams' own routes (and their validation).
        app.router.routes.insert(0, Route(f"{STREAMS}{{rest:path}}", _streams_elsewhere))
    app.include_router(page.router)
    app.router.routes.append(mcp_server.route())  # POST /mcp; the SDK loads on first use
    openapi.install(app, service)
    app.add_middleware(HeadAsGet)
    origins = service.settings.cors_allow_origins
    if origins:
        app.add_middleware(CorsByRoute, origins=origins)
    app.add_middleware(CorrelationMiddleware)
    return app


async def _streams_elsewhere(request: Request) -> Response:
    raise errors.RouteNotFound(
        f"{request.method} {request.url.path}: streams are served by the stream "
        "function, at the stream function's URL (the API's own /sse/ routes, or the stack's "
        "StreamFunctionUrl output), not by this function: it buffers whole answers, so a "
        "stream could never start here"
    )


class CorsByRoute:
    """CORS for the pages of ``origins``, with the methods and headers of the route asked:
    ``POST`` and MCP's headers on ``/mcp``, ``GET`` (and ``HEAD``) everywhere else; the API
    key on both (API Gateway lets preflights through without it, for the app to answer)."""

    def __init__(self, app: ASGIApp, *, origins: Sequence[str]) -> None:
        common: dict[str, Any] = {"allow_origins": list(origins), "max_age": 600}
        self.reads = CORSMiddleware(
            app,
            allow_methods=["GET", "HEAD"],
            allow_headers=_READ_REQUEST_HEADERS,
            expose_headers=_EXPOSED,
            **common,
        )
        self.mcp = CORSMiddleware(
            app,
            allow_methods=["POST"],
            allow_headers=_MCP_REQUEST_HEADERS,
            expose_headers=_MCP_EXPOSED,
            **common,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mcp = scope["type"] == "http" and scope.get("path") == mcp_server.PATH
        await (self.mcp if mcp else self.reads)(scope, receive, send)


class HeadAsGet:
    """Serve ``HEAD`` wherever ``GET`` is served: the app answers it as ``GET``, and the body
    is dropped (RFC 9110 9.3.2), its length kept. No route declares ``HEAD``, so this is the
    one place it is served, and the OpenAPI document keeps one operation per route.

    A stream ends after its headers: its first event is not sent, and the send raises, which
    ends the response and closes its generator (see ``streaming.EventStream``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = False

        async def send_headers_only(message: Message) -> None:
            nonlocal ended
            if message["type"] != "http.response.body":
                await send(message)
                return
            if not ended:
                ended = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            if message.get("more_body", False):
                raise _HeadersSent

        with suppress(_HeadersSent):
            await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class _HeadersSent(Exception):
    """A HEAD request's answer is complete; whatever body would follow is not wanted."""


class CorrelationMiddleware:
    """Give every request a correlation id, log with it, and echo it as ``X-Request-Id``;
    add :data:`EVERY_ANSWER`'s headers to every answer.

    The id is API Gateway's request id: from the Lambda event under Mangum, or from the
    request-context header that the Lambda Web Adapter adds. A caller's own ``X-Request-Id``
    is used only when neither exists (local runs). Only ids of a safe charset and length are
    used (:func:`market_proxy.api.events.request_id`); anything else gets a new id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = correlation_id(scope)
        logger.set_correlation_id(request_id)
        added = [(REQUEST_ID_HEADER.encode(), request_id.encode()), *_EVERY_ANSWER]
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                message["headers"] = headers + [h for h in added if h[0] not in present]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if started:
                raise
            await problems.unexpected(Request(scope))(scope, receive, send_with_id)


def correlation_id(scope: Scope) -> str:
    """The request's id: API Gateway's (from the event, or the adapter's header), else the
    caller's ``X-Request-Id``, else a new one; each only if safe to echo."""
    found = events.event_request_id(scope.get("aws.event"))
    if found:
        return found
    headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
    context = headers.get(b"x-amzn-request-context")
    if context and len(context) <= _MAX_CONTEXT_BYTES:
        try:
            parsed: Any = json.loads(context)
        except (ValueError, RecursionError):
            parsed = None
        found = events.request_id(parsed.get("requestId") if isinstance(parsed, dict) else None)
        if found:
            return found
    own = headers.get(REQUEST_ID_HEADER.encode())
    found = events.request_id(own.decode("latin-1")) if own else None
    return found or str(uuid.uuid4())
