"""ApiFunction's entry: the FastAPI app under Mangum, behind API Gateway (REST).

Everything is built once per container, at import (cold start, or before a SnapStart
snapshot); each invocation only runs the app.
"""

from __future__ import annotations

from market_proxy import coldstart

coldstart.begin()  # before the heavy imports (see market_proxy.coldstart)

# isort: split
import asyncio
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from market_proxy import snapstart
from market_proxy.api.app import create_app
from market_proxy.api.problems import PROBLEM_JSON
from market_proxy.observability import flush_exchange_metrics, logger, metrics, tracer
from market_proxy.service import MarketData
from market_proxy.settings import Settings

service = MarketData.from_settings(Settings.from_env())
# The container's one event loop: Mangum runs every invocation on it, so the exchange
# clients' HTTP sessions, bound to it, live across invocations.
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
snapstart.register(service, loop)
app = create_app(service)
# Mangum base64-encodes any type it does not know as text, and API Gateway (with no binary
# media types) would pass that base64 on to clients: problem+json must be listed.
_asgi = Mangum(app, lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, PROBLEM_JSON])
coldstart.end()


@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        response: dict[str, Any] = _asgi(event, context)  # type: ignore[arg-type]
    finally:
        flush_exchange_metrics()
    return response
