"""Powertools singletons shared by every entry point, and the measurements the core takes.

Service name, metrics namespace and tracing are set in the template's ``Globals`` (through
Powertools' own environment variables), not here. Recording a metric never fails a request.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

logger = Logger()
metrics = Metrics()
tracer = Tracer()

# Metrics' dimensions apply to a whole flush, so figures broken down by exchange are kept in
# a metric set of their own per exchange and flushed beside the main one.
_by_exchange: dict[str, EphemeralMetrics] = {}


def count(name: str, value: float = 1, *, exchange: str | None = None) -> None:
    """Add to a count; with ``exchange`` it is counted under that dimension as well."""
    _record(name, MetricUnit.Count, value, exchange)


def latency(name: str, milliseconds: float, *, exchange: str | None = None) -> None:
    _record(name, MetricUnit.Milliseconds, milliseconds, exchange)


def _record(name: str, unit: MetricUnit, value: float, exchange: str | None) -> None:
    try:
        metrics.add_metric(name=name, unit=unit, value=value)
        if exchange is not None:
            per_exchange = _by_exchange.get(exchange)
            if per_exchange is None:
                per_exchange = EphemeralMetrics()
                per_exchange.set_default_dimensions(exchange=exchange)
                _by_exchange[exchange] = per_exchange
            per_exchange.add_metric(name=name, unit=unit, value=value)
    except Exception:  # a full or misconfigured metric set must not fail the request
        logger.debug("metric not recorded", extra={"metric": name})


def flush_exchange_metrics() -> None:
    """Emit the per-exchange figures recorded since the last flush (end of an invocation)."""
    for per_exchange in _by_exchange.values():
        _flush(per_exchange)


def flush_all_metrics() -> None:
    """Emit every figure recorded since the last flush: where no handler decorator does it
    (a request served under uvicorn by the Lambda Web Adapter)."""
    flush_exchange_metrics()
    _flush(metrics)


def _flush(metric_set: Metrics | EphemeralMetrics) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no metrics to publish" is normal for some requests
        try:
            metric_set.flush_metrics()
        except Exception:
            logger.warning("metrics could not be flushed", exc_info=True)
            metric_set.clear_metrics()


class Stopwatch:
    """Started when made; ``ms`` is the time since, read whenever it is needed."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    @property
    def ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000


@asynccontextmanager
async def traced(name: str, **annotations: str) -> AsyncIterator[None]:
    """Run a block in an X-Ray subsegment named ``name``, annotated for search.

    A no-op where tracing is off (tests, ``make run``, the stream function).
    """
    if tracer.disabled:
        yield
        return
    async with tracer.provider.in_subsegment_async(name=name) as subsegment:
        for key, value in annotations.items():
            subsegment.put_annotation(key, value)
        yield
