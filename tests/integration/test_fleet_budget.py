"""One upstream budget for the fleet, on DynamoDB Local and a loopback exchange that limits
what one address may ask (429 past it, a ban after repeated 429s): processes sharing the
budget, a ban one met honoured by the others, the table failing mid-run, priorities under a
short budget, and hot keys refreshed ahead while cold ones expire."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal
from market_proxy import errors
from market_proxy.budget import in_background
from market_proxy.clock import now_ms
from market_proxy.observability import flush_all_metrics
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.clock import SharedClock
from tests.support.dynamodb_faults import DynamoDBFaultProxy, dynamodb_fault_proxy
from tests.support.emf import metric_total
from tests.support.fleet import fleet
from tests.support.interpreter import last_json, run_fresh
from tests.support.output import captured
from tests.support.stack import environment_for

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
# Eight requests a second for the fleet, under the loopback exchange's limit of ten from our
# address (a margin for requests leaving in one second and arriving in the next).
LIMITED = {"binance": {"requests_per_second": 8, "lease": 2}}
SYMBOLS = [f"SIM{i:04d}/USDT" for i in range(20)]


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "exchange_limits": LIMITED,
            "ticker_ttl_seconds": 0.2,
            "ticker_swr_seconds": 0.0,
            "ticker_sie_seconds": 0.0,
            "refresh_ahead_fraction": 0.0,
        }
    )


@pytest.mark.timeout(120)
def test_processes_sharing_the_budget_never_ask_past_the_exchanges_limit(
    limited: Settings, sim: ExchangeSim
) -> None:
    # Given an exchange that takes 10 requests a second from us and bans after three 429s,
    sim.set_rate_limit("binance", 10, ban_after=3, ban_s=60)
    # when three processes ask for twenty tickers as fast as they can for three seconds,
    outcomes = fleet(limited, processes=3, clients=8, seconds=3.0, symbols=SYMBOLS)
    # then the exchange never saw more than its limit in a second, and never had to say so;
    assert sim.limits.busiest_second("binance") <= 10
    assert dict(sim.limits.answered) == {}
    # and every process was answered, some told to wait (the budget) rather than banned.
    assert all(sum(o.values()) > 0 for o in outcomes)
    assert all(o["upstream"] + o["l1"] + o["l2"] > 0 for o in outcomes)
    assert not any(o["upstream_banned"] or o["upstream_rate_limited"] for o in outcomes)


def test_without_the_shared_budget_the_same_fleet_gets_banned(
    limited: Settings, sim: ExchangeSim
) -> None:
    sim.set_rate_limit("binance", 10, ban_after=3, ban_s=60)
    unshared = limited.model_copy(update={"fleet_budget": False})
    fleet(unshared, processes=3, clients=8, seconds=2.0, symbols=SYMBOLS)
    assert sim.limits.busiest_second("binance") > 10
    assert sim.limits.answered[("binance", "418")] > 0, "the contrast the budget exists for"


def test_a_ban_one_process_met_is_honoured_by_another_that_never_called(
    settings: Settings, sim: ExchangeSim
) -> None:
    # Given a container that met Binance's ban for 60 s,
    async def banned() -> None:
        service = MarketData.from_settings(settings)
        try:
            sim.inject("binance", "418", endpoint="ticker", retry_after=60)
            with pytest.raises(errors.UpstreamBanned):
                await service.ticker("binance", "BTC/USDT")
        finally:
            await service.close()

    asyncio.run(banned())
    sim.reset_calls()
    # when a new process (a cold start elsewhere in the fleet) is asked for a ticker,
    program = (
        "import asyncio, json\n"
        "from market_proxy import errors\n"
        "from market_proxy.service import MarketData\n"
        "from market_proxy.settings import Settings\n"
        "async def main():\n"
        "    service = MarketData.from_settings(Settings.from_env())\n"
        "    try:\n"
        "        await service.ticker('binance', 'ETH/USDT')\n"
        "        print(json.dumps({'code': None}))\n"
        "    except errors.ProxyError as exc:\n"
        "        print(json.dumps({'code': exc.code, 'retry_after': exc.retry_after}))\n"
        "    finally:\n"
        "        await service.close()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, **environment_for(settings), "PYTHONPATH": f"{ROOT / 'functions'}:{ROOT}"}
    answer = last_json(run_fresh(program, env=env, cwd=ROOT))
    # then it refuses with the ban's time left, without a ticker call to Binance.
    assert answer["code"] == "upstream_banned"
    assert 50 < answer["retry_after"] <= 60
    assert sim.calls("binance", "ticker") == 0


@pytest.fixture
def proxy(dynamodb_local: DynamoDBLocal) -> Iterator[DynamoDBFaultProxy]:
    with dynamodb_fault_proxy(dynamodb_local.endpoint, stall_s=2.0) as running:
        yield running


async def test_when_the_table_fails_mid_run_calls_go_on_within_a_local_share(
    limited: Settings, sim: ExchangeSim, proxy: DynamoDBFaultProxy
) -> None:
    behind = limited.model_copy(
        update={"dynamodb_endpoint_url": proxy.url, "dynamodb_timeout_s": 0.3}
    )
    service = MarketData.from_settings(behind)
    try:
        await service.ticker("binance", "BTC/USDT")  # markets and one ticker, the table fine
        # Given the table failing from now on,
        proxy.fail("ThrottlingException")
        sim.reset_calls()
        # when tickers keep being asked for,
        with captured() as printed:
            started = time.monotonic()
            got = await asyncio.gather(
                *(service.ticker("binance", s) for s in SYMBOLS[:6]), return_exceptions=True
            )
            took = time.monotonic() - started
            flush_all_metrics()
    finally:
        await service.close()
    # then they are answered (from the exchange) within the local share of the budget
    # (a tenth of eight requests a second: one a second), nothing waits on the table,
    answered = [g for g in got if not isinstance(g, BaseException)]
    assert len(answered) >= 2
    assert all(isinstance(g, errors.UpstreamBusy) for g in got if isinstance(g, BaseException))
    assert took < behind.upstream_timeout_ms / 1000 + 2
    # and the fallback was counted.
    assert metric_total(printed.getvalue(), "BudgetFallback", exchange="binance") >= 1


async def test_warming_gives_way_to_clients_when_the_budget_is_short(
    settings: Settings, sim: ExchangeSim
) -> None:
    short = settings.model_copy(
        update={
            "exchange_limits": {"binance": {"requests_per_second": 8, "lease": 2, "reserve": 4}}
        }
    )
    service = MarketData.from_settings(short)
    try:
        await service.load_markets("binance")
        with in_background():
            background = await asyncio.gather(
                *(service.ticker("binance", s) for s in SYMBOLS[:6]), return_exceptions=True
            )
        foreground = await service.ticker("binance", SYMBOLS[10])
    finally:
        await service.close()
    refused = [b for b in background if isinstance(b, errors.UpstreamBusy)]
    assert refused, "background work was refused once it used its part"
    assert len(background) - len(refused) <= 2, "four of eight units are the clients'"
    assert foreground.freshness.source == "upstream"


@pytest.fixture
async def ahead(
    settings: Settings, sim: ExchangeSim
) -> AsyncIterator[tuple[MarketData, SharedClock]]:
    clock = SharedClock(now_ms(), sim)
    service = MarketData.from_settings(
        settings.model_copy(update={"ticker_ttl_seconds": 2.0, "refresh_ahead_fraction": 0.25}),
        clock,
    )
    yield service, clock
    await service.close()


async def test_a_hot_key_is_refreshed_ahead_and_a_cold_one_left_to_expire(
    ahead: tuple[MarketData, SharedClock], sim: ExchangeSim
) -> None:
    service, clock = ahead
    await service.ticker("binance", "BTC/USDT")
    await service.ticker("binance", "ETH/USDT")  # asked once, never again
    sim.reset_calls()
    # Given a key asked for again in the last quarter of its freshness,
    clock.advance(1.6)
    assert (await service.ticker("binance", "BTC/USDT")).freshness.source == "l1"
    # then it is refreshed in the background, once,
    deadline = time.monotonic() + 10
    while sim.calls("binance", "ticker") < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await service._cache.close()  # lets the refresh land (it waits for refreshes under way)
    assert sim.calls("binance", "ticker") == 1
    # so that past its first freshness it is still fresh, never stale,
    clock.advance(0.6)
    hot = await service.ticker("binance", "BTC/USDT")
    assert hot.freshness.source == "l1"
    assert not hot.freshness.is_stale
    # while the cold key was not refreshed: it has expired.
    assert sim.calls("binance") == 1
    cold = await service.ticker("binance", "ETH/USDT")
    assert cold.freshness.source in ("stale", "upstream")
