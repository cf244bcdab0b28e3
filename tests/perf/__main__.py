"""``python -m tests.perf [NAME ...]``: run the benchmarks (all, by default) against DynamoDB
Local and the loopback exchange; print each one's figures and PASS or MISS per target.

Exits 1 when a target is missed or a benchmark fails, 2 on a bad command line.
"""

from __future__ import annotations

import os

# Before anything imports boto3 or Powertools. Metrics stay on, as deployed: their EMF output
# is part of what a request costs, so stdout is captured while a benchmark runs instead. No
# X-Ray daemon runs here, so tracing is off. The paths timed log nothing at INFO (deployed
# level); WARNING keeps a cold start's INFO lines out of the report.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "market-data-proxy",
        "POWERTOOLS_METRICS_NAMESPACE": "MarketDataProxyBench",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_PROFILE", None)

import argparse
import contextlib
import importlib
import io
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import cast

# Imported before stdout is captured, so that the service's log lines reach the terminal.
import market_proxy.observability  # noqa: F401
from tests.perf import BENCHMARKS
from tests.perf.report import Report
from tests.perf.stack import Stack, running_stack


class _LineCounter(io.TextIOBase):
    """A stdout that keeps nothing but a count of the lines written to it."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


def main(argv: Sequence[str] | None = None) -> int:
    # Said by Powertools at every invocation that recorded no metric (a cached answer may not).
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    parser = argparse.ArgumentParser(prog="python -m tests.perf", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    names: list[str] = args.names or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark named {', '.join(unknown)}")

    began = time.monotonic()
    load = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
    print(
        f"make bench: {len(names)} benchmark(s); {os.cpu_count()} cores, load average {load}; "
        f"Python {platform.python_version()}",
        flush=True,
    )
    targets = missed = failed = 0
    with running_stack() as stack:
        print(f"stack: DynamoDB Local {stack.dynamodb.endpoint}, exchange {stack.sim.url}")
        for name in names:
            report = _run(name, stack)
            if report is None:
                failed += 1
                continue
            targets += len(report.targets)
            missed += sum(not target.passed for target in report.targets)
    verdict = "PASS" if not (missed or failed) else "MISS"
    print(
        f"\n{verdict}: {targets - missed} of {targets} targets met, {failed} benchmark(s) failed; "
        f"{time.monotonic() - began:.0f} s"
    )
    return 1 if missed or failed else 0


def _run(name: str, stack: Stack) -> Report | None:
    """Run one benchmark and print its report; None when it failed."""
    module = importlib.import_module(f"{__package__}.{name}")
    title = str(getattr(module, "TITLE", name))
    run = cast(Callable[[Stack], Report], module.run)
    print(f"\n== {title} ({name}) ==", flush=True)
    captured = _LineCounter()
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(captured):
            report = run(stack)
    except Exception:
        print(f"FAIL  {name} did not complete:\n{traceback.format_exc()}", flush=True)
        return None
    for line in report.figures:
        print(f"  {line}")
    for target in report.targets:
        print(f"  {target.line()}")
    print(
        f"  ({time.monotonic() - started:.1f} s; {captured.lines} lines of stdout captured)",
        flush=True,
    )
    return report


if __name__ == "__main__":
    sys.exit(main())
