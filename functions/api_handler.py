"""ApiFunction's entry: the FastAPI app under Mangum, behind API Gateway (REST).

Everything is built once per container, at import (cold start, or before a SnapStart
snapshot); each invocation only runs the app.
"""

from __future__ import annotations

from market_proxy import coldstart

coldstart.begin()  # before the heavy imports (see market_proxy.coldstart)

# isort: split
import asyncio
import uuid
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES
from mangum.handlers import APIGateway

from market_proxy import errors, mcp_server, snapstart
from market_proxy.api import events
from market_proxy.api.app import EVERY_ANSWER, REQUEST_ID_HEADER, create_app
from market_proxy.api.problems import PROBLEM_JSON, render
from market_proxy.observability import flush_exchange_metrics, logger, metrics, tracer
from market_proxy.service import MarketData
from market_proxy.settings import Settings


class RestProxyEvent(APIGateway):
    """Every event is read as API Gateway REST's, this function's only integration: Mangum
    would otherwise guess from its keys (a ``version`` makes it an HTTP API's, whose
    reading fails). :func:`market_proxy.api.events.malformed` checked what it reads."""

    @classmethod
    def infer(cls, event: Any, context: Any, config: Any) -> bool:
        return True


service = MarketData.from_settings(Settings.from_env())
# The container's one event loop: Mangum runs every invocation on it, so the exchange
# clients' HTTP sessions, bound to it, live across invocations.
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
# Mangum buffers whole answers: the streams are the stream function's.
app = create_app(service, streams=False)
# The snapshot holds the MCP SDK and its tools, built: a restored container's first /mcp
# request need not import them.
snapstart.register(service, loop, also_before=lambda: mcp_server.preload(app))
# Mangum base64-encodes any type it does not know as text, and API Gateway (with no binary
# media types) would pass that base64 on to clients: problem+json must be listed.
_asgi = Mangum(
    app,
    lifespan="off",
    text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_JSON],
    custom_handlers=[RestProxyEvent],
)
coldstart.end()


@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
# The correlation id is set once checked (the app's middleware, or below), never as sent.
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    try:
        return _answer(event, context)
    finally:
        flush_exchange_metrics()


def _answer(event: Any, context: LambdaContext) -> dict[str, Any]:
    """The app's answer to ``event``; a problem, never an exception, whatever it holds."""
    reason = events.malformed(event)
    if reason is not None:
        logger.set_correlation_id(request_id := _request_id(event))
        logger.warning(
            "event is not a request", extra={"reason": reason, "event_shape": events.shape(event)}
        )
        return _problem(errors.MalformedRequest(reason), event, request_id)
    try:
        response: dict[str, Any] = _asgi(event, context)  # type: ignore[arg-type]
    except Exception:
        # Unreachable once `events.malformed` passed the event; answered all the same.
        logger.set_correlation_id(request_id := _request_id(event))
        logger.exception("the adapter failed", extra={"event_shape": events.shape(event)})
        failed = errors.InternalError("The proxy failed unexpectedly; the failure has been logged.")
        return _problem(failed, event, request_id)
    return response


def _request_id(event: Any) -> str:
    return events.event_request_id(event) or str(uuid.uuid4())


def _problem(error: errors.ProxyError, event: Any, request_id: str) -> dict[str, Any]:
    """``error`` as API Gateway's REST proxy answer, with the headers of every answer."""
    body, headers = render(error, events.instance(event))
    return {
        "statusCode": error.status,
        "headers": {
            **{name.lower(): value for name, value in headers.items()},
            "content-type": PROBLEM_JSON,
            REQUEST_ID_HEADER: request_id,
            **EVERY_ANSWER,
        },
        "multiValueHeaders": {},
        "body": body,
        "isBase64Encoded": False,
    }
