"""WarmerFunction's entry: an EventBridge schedule invokes it; it keeps hot data hot.

The event's content does not matter (any scheduled-event shape works); what to warm comes
from ``WARM_TARGETS`` and from the demand the API has noted.
"""

from __future__ import annotations

from market_proxy import coldstart

coldstart.begin()  # before the heavy imports (see market_proxy.coldstart)

# isort: split
import asyncio
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from market_proxy.observability import flush_exchange_metrics, logger, metrics, tracer
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from market_proxy.warm_targets import parse_targets
from market_proxy.warming import warm

settings = Settings.from_env()
targets = parse_targets(settings.warm_targets)  # a malformed list fails the cold start, loudly
service = MarketData.from_settings(settings)
# One loop for the container's life: the exchange clients' sessions belong to it.
loop = asyncio.new_event_loop()
# Leave this much of the invocation's time unused, so the run always ends on its own.
SAFETY_MARGIN_S = 5.0
coldstart.end()


@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
    try:
        report = loop.run_until_complete(
            warm(
                service,
                targets,
                deadline=time.monotonic() + max(1.0, budget),
                concurrency=settings.warm_concurrency,
                candles=settings.warm_candles,
                top_keys=settings.warm_top_keys,
                period_s=settings.warm_period_minutes * 60,
                ticker_loop_s=settings.warm_ticker_loop_seconds,
            )
        )
    finally:
        flush_exchange_metrics()
    return report.as_dict()
