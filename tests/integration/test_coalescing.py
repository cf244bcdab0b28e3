"""Across processes sharing one table, concurrent misses on a key cost one upstream call."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.stack import environment_for

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def swarm(settings: Settings, processes: int, each: int, delay_s: float) -> list[list[str]]:
    env = {**os.environ, **environment_for(settings), "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    start_at = time.time() + delay_s
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.swarm",
                "binance",
                "BTC/USDT",
                str(each),
                str(start_at),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1])["sources"])
    return results


def test_two_hundred_requests_from_four_processes_for_an_expired_key_make_one_call(
    settings: Settings, sim: ExchangeSim
) -> None:
    shared = settings.model_copy(update={"ticker_ttl_seconds": 1.0, "ticker_swr_seconds": 0})

    async def prime() -> None:
        service = MarketData.from_settings(shared)
        await service.ticker("binance", "BTC/USDT")  # markets snapshot and a soon-expired ticker
        await service.close()

    asyncio.run(prime())
    sim.set_latency(0.2)  # a slow exchange widens the window in which others could pile in
    sim.reset_calls()
    # Processes start (importing ccxt) while the primed ticker expires; all fire together.
    sources = swarm(shared, processes=4, each=50, delay_s=15)
    assert sim.calls("binance", "markets") == 0
    assert sim.calls("binance", "ticker") == 1
    assert sum(len(process) for process in sources) == 200
    # The lease holder's fifty share its one call; the other processes read its result.
    assert sorted(",".join(sorted(set(process))) for process in sources) == [
        "l2",
        "l2",
        "l2",
        "upstream",
    ]
