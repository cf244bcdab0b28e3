"""Powertools singletons shared by every entry point, and the few measurements the core takes.

Service name, metrics namespace and tracing are set in the template's ``Globals`` (through
Powertools' own environment variables), not here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
tracer = Tracer()


def count(name: str, value: float = 1, *, exchange: str | None = None) -> None:
    """Add to a count metric; with ``exchange`` it is also counted under that dimension."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if exchange is not None:
        _per_exchange(name, MetricUnit.Count, value, exchange)


def latency(name: str, milliseconds: float, *, exchange: str | None = None) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=milliseconds)
    if exchange is not None:
        _per_exchange(name, MetricUnit.Milliseconds, milliseconds, exchange)


def _per_exchange(name: str, unit: MetricUnit, value: float, exchange: str) -> None:
    # Metrics' own dimensions apply to every metric of a flush; a metric broken down by
    # exchange needs a blob of its own.
    from aws_lambda_powertools.metrics import single_metric

    with single_metric(
        name=f"{name}ByExchange",
        unit=unit,
        value=value,
        namespace=metrics.namespace,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name="exchange", value=exchange)


@contextmanager
def timed() -> Iterator[list[float]]:
    """Measure a block; the elapsed milliseconds land in the yielded one-item list."""
    box = [0.0]
    started = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = (time.perf_counter() - started) * 1000
