"""The FastAPI application: the same app under Mangum (API function) and uvicorn (stream
function, ``make run``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from market_proxy import mcp_server
from market_proxy.api import openapi, page, problems, reference, routes, streaming
from market_proxy.observability import logger
from market_proxy.service import MarketData

REQUEST_ID_HEADER = "x-request-id"


def create_app(service: MarketData) -> FastAPI:
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
    app.include_router(page.router)
    app.router.routes.append(mcp_server.route())  # POST /mcp; the SDK loads on first use
    openapi.install(app, service)
    origins = service.settings.cors_allow_origins
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(origins),
            allow_methods=["GET", "HEAD", "OPTIONS"],
            allow_headers=["If-None-Match", "Last-Event-ID", REQUEST_ID_HEADER],
            expose_headers=[
                "ETag",
                "Age",
                "Retry-After",
                "X-Cache",
                "X-Data-Age-Ms",
                "X-Fetched-At",
                "X-Stale-Reason",
                REQUEST_ID_HEADER,
            ],
            max_age=600,
        )
    app.add_middleware(CorrelationMiddleware)
    return app


class CorrelationMiddleware:
    """Give every request a correlation id, log with it, and echo it as ``X-Request-Id``.

    The id is API Gateway's request id: from the Lambda event under Mangum, or from the
    request-context header that the Lambda Web Adapter adds. A caller's own ``X-Request-Id``
    is used only when neither exists (local runs).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = correlation_id(scope)
        logger.set_correlation_id(request_id)
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if started:
                raise
            await problems.unexpected(Request(scope))(scope, receive, send_with_id)


def correlation_id(scope: Scope) -> str:
    event: Any = scope.get("aws.event")
    if isinstance(event, dict):
        from_event = (event.get("requestContext") or {}).get("requestId")
        if from_event:
            return str(from_event)
    headers: dict[bytes, bytes] = dict(scope.get("headers") or [])
    context = headers.get(b"x-amzn-request-context")
    if context:
        try:
            from_adapter = json.loads(context).get("requestId")
        except (ValueError, AttributeError):
            from_adapter = None
        if from_adapter:
            return str(from_adapter)
    own = headers.get(REQUEST_ID_HEADER.encode())
    if own and len(own) <= 128:
        return own.decode("latin-1")
    return str(uuid.uuid4())
