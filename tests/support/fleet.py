"""A fleet of containers asking for many tickers as fast as they can, each in a process of
its own sharing the table, as Lambda containers behind one NAT gateway would.

:func:`fleet` runs the workers: this module as ``python -m tests.support.fleet EXCHANGE
SECONDS CLIENTS SYMBOL...`` with the service's settings in the environment. Each builds the
service as a cold start does, loads its markets, says it is ready, waits for the start
instant on stdin, then runs CLIENTS concurrent clients that each ask for the next symbol
(round robin) as soon as they have their last answer, for SECONDS. It answers with one JSON
line: how many answers it got, by outcome (a source, or a problem's code).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from market_proxy import errors
from market_proxy.keys import BudgetKey
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.stack import environment_for

ROOT = Path(__file__).resolve().parents[2]


def fleet(
    settings: Settings,
    *,
    processes: int,
    clients: int,
    seconds: float,
    symbols: list[str],
    exchange: str = "binance",
    timeout_s: float = 180.0,
) -> list[Counter[str]]:
    """Outcomes per process of ``processes`` workers started together."""
    env = {**os.environ, **environment_for(settings), "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    command = [
        sys.executable,
        "-m",
        "tests.support.fleet",
        exchange,
        str(seconds),
        str(clients),
        *symbols,
    ]
    workers = [
        subprocess.Popen(
            command, env=env, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(processes)
    ]
    try:
        for worker in workers:
            _line(worker, "ready")
        start_at = time.time() + 0.3
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(f"{start_at}\n")
            worker.stdin.close()
        outcomes: list[Counter[str]] = []
        for worker in workers:
            counted = _line(worker, "outcomes")["outcomes"]
            assert isinstance(counted, dict)
            outcomes.append(Counter({str(k): int(v) for k, v in counted.items()}))
        for worker in workers:
            worker.wait(timeout=timeout_s)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    return outcomes


def _line(worker: subprocess.Popen[str], field: str) -> dict[str, object]:
    assert worker.stdout is not None
    for line in worker.stdout:
        if line.startswith("{"):
            message: dict[str, object] = json.loads(line)
            if field in message:
                return message
    raise RuntimeError(f"a fleet worker ended before saying {field!r}")


async def main(exchange: str, seconds: float, clients: int, symbols: list[str]) -> None:
    service = MarketData.from_settings(Settings.from_env())
    outcomes: Counter[str] = Counter()
    _count_leases(service, outcomes)
    try:
        await service.load_markets(exchange)
        print(json.dumps({"ready": True}), flush=True)
        start_at = float(await asyncio.to_thread(sys.stdin.readline))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        end = start_at + seconds

        async def client(offset: int) -> None:
            turn = offset
            while time.time() < end:
                symbol = symbols[turn % len(symbols)]
                turn += clients
                try:
                    answer = await service.ticker(exchange, symbol)
                    outcomes[answer.freshness.source] += 1
                except errors.ProxyError as exc:
                    outcomes[exc.code] += 1
                    await asyncio.sleep(0.01)  # a client told to wait does not spin
                # A request comes over a socket: between one and the next the loop runs the
                # rest (a request that was granted its budget goes out). An answer from
                # memory suspends nowhere, so without this a client would hold the loop.
                await asyncio.sleep(0)

        await asyncio.gather(*(client(i) for i in range(clients)))
    finally:
        await service.close()
    print(json.dumps({"outcomes": outcomes}), flush=True)


def _count_leases(service: MarketData, outcomes: Counter[str]) -> None:
    """Count the budget's lease requests under ``outcomes["budget_leases"]``, the table
    writes they cost (each conditional UpdateItem, refused ones too) under
    ``budget_writes``, and the calls made on the local share while the table failed under
    ``budget_fallbacks``."""
    budget = service._budget  # what the fleet costs the table, for reports
    if budget is None or budget._store is None:
        return
    store: Any = budget._store
    take, call = store.take_units, store._call
    budget_keys = {BudgetKey(exchange).text for exchange in service.settings.exchanges}

    async def counted(*args: Any, **kwargs: Any) -> Any:
        outcomes["budget_leases"] += 1
        return await take(*args, **kwargs)

    async def counted_call(operation: str, **request: Any) -> Any:
        key = request.get("Key", {}).get("pk", {}).get("S")
        if operation == "update_item" and key in budget_keys:
            outcomes["budget_writes"] += 1
        return await call(operation, **request)

    store.take_units = counted
    store._call = counted_call
    fallback = budget._fallback

    def counted_fallback(*args: Any, **kwargs: Any) -> bool:
        outcomes["budget_fallbacks"] += 1
        return fallback(*args, **kwargs)

    budget._fallback = counted_fallback  # type: ignore[method-assign]


if __name__ == "__main__":
    exchange, seconds, clients, *symbols = sys.argv[1:]
    asyncio.run(main(exchange, float(seconds), int(clients), symbols))
