"""StreamFunction's app: the same FastAPI app, served by uvicorn under the Lambda Web Adapter
(response streaming), started by ``run.sh``.

There is no Lambda handler to decorate here, so metrics are flushed at the end of every
request by a middleware, and the correlation id comes from the adapter's request-context
header (see :class:`market_proxy.api.app.CorrelationMiddleware`).
"""

from __future__ import annotations

from market_proxy import coldstart

coldstart.begin()  # before the heavy imports (see market_proxy.coldstart)

# isort: split
from starlette.types import ASGIApp, Receive, Scope, Send

from market_proxy.api.app import create_app
from market_proxy.observability import count, flush_all_metrics
from market_proxy.service import MarketData
from market_proxy.settings import Settings


class FlushMetricsMiddleware:
    """Emit the metrics a request recorded when it ends (a stream ends when its client or
    its time limit ends it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                flush_all_metrics()


service = MarketData.from_settings(Settings.from_env())
app = create_app(service)
app.add_middleware(FlushMetricsMiddleware)
count("ColdStart")
coldstart.end()
