"""Across processes sharing one table, concurrent misses on a key cost one upstream call."""

from __future__ import annotations

import asyncio
import time

import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.swarm import swarm

pytestmark = pytest.mark.integration


def test_two_hundred_requests_from_four_processes_for_an_expired_key_make_one_call(
    settings: Settings, sim: ExchangeSim
) -> None:
    shared = settings.model_copy(update={"ticker_ttl_seconds": 1.0, "ticker_swr_seconds": 0})

    async def prime() -> None:
        service = MarketData.from_settings(shared)
        await service.ticker("binance", "BTC/USDT")  # markets snapshot and a soon-expired ticker
        await service.close()

    asyncio.run(prime())
    expired_at = time.time() + shared.ticker_ttl_seconds
    sim.set_latency(0.2)  # a slow exchange widens the window in which others could pile in
    sim.reset_calls()
    # Processes start (importing ccxt) while the primed ticker expires; once all are ready,
    # all fire together.
    sources = swarm(shared, processes=4, each=50, not_before=expired_at).sources
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
