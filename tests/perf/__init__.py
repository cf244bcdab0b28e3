"""Benchmarks, run by ``make bench`` (``python -m tests.perf [NAME ...]``), never by pytest.

Each benchmark prints the figures it measured and judges the design's targets on them, as
ratios or counts taken in the same run; the run exits non-zero when any target is missed
or any benchmark fails.

Adding a benchmark: write a module in this package that defines

    TITLE: str                            # the heading of its report
    def run(stack: Stack) -> Report: ...  # measure; return the figures and targets

and add its module name to ``BENCHMARKS`` below: one line.

``stack`` (:class:`tests.perf.stack.Stack`) is DynamoDB Local and the loopback exchange,
shared by the whole run. ``with stack.deployed("ApiFunction") as settings`` gives a fresh
table and the settings that function reads when deployed (template.yaml's environment,
pointed at this stack), with the exchange's call counts reset; ``stack.table()``,
``stack.settings(function, table)`` and ``stack.reset_exchange()`` are its parts.
``stack.sim`` counts upstream calls (``stack.sim.calls("binance", "ticker")``).
:func:`tests.perf.stack.cold_start` imports a Lambda entry module as a cold start does, and
:func:`tests.perf.stack.invoke` sends its handler an API Gateway event, timed and checked.

A :class:`tests.perf.report.Report` holds lines of what was measured (``figure(text)``) and
targets (``target(label, measured, limit, unit)``, judged ``measured <= limit``, or ``<``
with ``inclusive=False``); :class:`tests.perf.report.Spread` gives p50 and p90 of timings.
Every figure printed is one measured in the run; a target is a ratio or a count taken in
that same run. A benchmark that cannot measure what it claims raises: the run reports it
failed and exits non-zero.

Benchmarks run one after another in one process, in the order listed, with stdout captured
while each runs (Powertools prints its metrics there). A benchmark leaves the process as it
found it: it closes what it opened and drops its table. One that needs a fresh interpreter
(a cold start's import cost) starts its own, with the function's environment from
``tests.support.stack.environment_for(settings)``.
"""

from __future__ import annotations

BENCHMARKS: tuple[str, ...] = (
    "cached_ticker",
    "coalescing",
    "sse_fanout",
    "candles",
    "market_data",
    "fleet",
    "cold_start",
    "mcp",
    "suggestions",
)
