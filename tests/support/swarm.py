"""Swarms: at one agreed instant, many concurrent requests for one market's ticker (or its
order book, at mixed depths) from several processes sharing the table, as Lambda containers
would.

:func:`swarm` runs the workers: this module as ``python -m tests.support.swarm EXCHANGE
SYMBOL COUNT KIND`` with the service's settings in the environment. Each builds the service as a
cold start does and loads its markets, says it is ready, then waits for the start instant
(epoch seconds) on stdin, so a slow start of one process never spreads the swarm out. It
answers with one JSON line: its answers' sources and how long they took.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.stack import environment_for

ROOT = Path(__file__).resolve().parents[2]
_READY = "ready"
_SOURCES = "sources"


@dataclass(frozen=True, slots=True)
class SwarmResult:
    sources: list[list[str]]  # per process, the source of each answer
    elapsed_s: list[float]  # per process, from the start instant to its last answer
    ready_after_s: float  # from launch until every process was ready

    @property
    def wall_s(self) -> float:
        """From the start instant until the last answer of any process."""
        return max(self.elapsed_s)


def swarm(
    settings: Settings,
    *,
    processes: int,
    each: int,
    exchange: str = "binance",
    symbol: str = "BTC/USDT",
    kind: str = "ticker",
    not_before: float = 0.0,
    timeout_s: float = 120.0,
) -> SwarmResult:
    """``processes`` workers fire ``each`` concurrent requests at one instant, once all are
    ready and no earlier than ``not_before`` (epoch seconds)."""
    env = {**os.environ, **environment_for(settings), "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    command = [sys.executable, "-m", "tests.support.swarm", exchange, symbol, str(each), kind]
    launched = time.monotonic()
    with tempfile.TemporaryFile("w+") as errors:
        workers = [
            subprocess.Popen(
                command,
                env=env,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            for _ in range(processes)
        ]
        # A worker that hangs must not hang the caller.
        watchdog = threading.Timer(timeout_s, _kill, [workers])
        watchdog.start()
        try:
            for worker in workers:
                _expect(worker, _READY, errors)
            ready_after = time.monotonic() - launched
            start_at = max(time.time() + 0.3, not_before)
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write(f"{start_at}\n")
                worker.stdin.close()
            reports = [_expect(worker, _SOURCES, errors) for worker in workers]
            for worker in workers:
                if worker.wait() != 0:
                    raise RuntimeError(f"a swarm worker failed: {_tail(errors)}")
        finally:
            watchdog.cancel()
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
    return SwarmResult(
        sources=[report[_SOURCES] for report in reports],
        elapsed_s=[float(report["elapsed_s"]) for report in reports],
        ready_after_s=ready_after,
    )


def _kill(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        worker.kill()


def _expect(worker: subprocess.Popen[str], field: str, errors: IO[str]) -> dict[str, Any]:
    """The next JSON line from ``worker`` holding ``field``; other output is skipped."""
    assert worker.stdout is not None
    for line in worker.stdout:
        if line.startswith("{"):
            message: dict[str, Any] = json.loads(line)
            if field in message:
                return message
    raise RuntimeError(f"a swarm worker ended before saying {field!r}: {_tail(errors)}")


def _tail(errors: IO[str]) -> str:
    errors.seek(0)
    return errors.read()[-3000:]


DEPTHS = (5, 10, 20, 50)  # what order book requests of a swarm ask for, in turn


def ask(service: MarketData, kind: str, exchange: str, symbol: str, index: int) -> Any:
    """The ``index``-th request of a swarm: a ticker, or a book at one of ``DEPTHS``."""
    if kind == "orderbook":
        return service.order_book(exchange, symbol, DEPTHS[index % len(DEPTHS)])
    return service.ticker(exchange, symbol)


async def main(exchange: str, symbol: str, count: int, kind: str) -> None:
    service = MarketData.from_settings(Settings.from_env())
    try:
        await service.load_markets(exchange)  # markets, from the snapshot
        print(json.dumps({_READY: True}), flush=True)
        start_at = float(await asyncio.to_thread(sys.stdin.readline))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        answers = await asyncio.gather(
            *(ask(service, kind, exchange, symbol, i) for i in range(count))
        )
        elapsed = time.time() - start_at
    finally:
        await service.close()
    sources = [answer.freshness.source for answer in answers]
    print(json.dumps({_SOURCES: sources, "elapsed_s": elapsed}), flush=True)


if __name__ == "__main__":
    exchange, symbol, count, kind = sys.argv[1:5]
    asyncio.run(main(exchange, symbol, int(count), kind))
