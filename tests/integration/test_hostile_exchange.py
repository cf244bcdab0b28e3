"""What a misbehaving exchange can still try, against the service on DynamoDB Local and the
loopback exchange: an answer of hundreds of megabytes, a ban with a Retry-After no clock can
keep, and a queue of slow history requests in front of a client's cold ticker."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from market_proxy import errors
from market_proxy.service import MarketData
from market_proxy.settings import ANSWER_CAPS, Settings

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
MIB = 1024 * 1024


def spot_symbols(sim: ExchangeSim, exchange: str) -> list[str]:
    return [f"{market.base}/{market.quote}" for market in sim.book.of_kind(exchange, "spot")]


@pytest.mark.timeout(120)
async def test_an_answer_of_200_mb_is_a_502_read_no_further_than_the_cap_of_its_kind(
    service: MarketData, sim: ExchangeSim
) -> None:
    await service.load_markets("binance")
    # Given an exchange whose ticker answer is 200 MB of well-formed JSON,
    sim.inject("binance", "huge", endpoint="ticker", size_bytes=200 * MIB)
    # when a client asks for the ticker,
    tracemalloc.start()
    try:
        with pytest.raises(errors.UpstreamBadResponse) as refused:
            await service.ticker("binance", "BTC/USDT")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # then it is an unreadable answer that says why, and the process held a few times
    # a ticker's cap of it at most, never the answer.
    assert refused.value.status == 502
    assert "larger than" in refused.value.detail
    assert peak < 4 * ANSWER_CAPS["ticker"] + 8 * MIB


async def test_a_cap_set_for_a_kind_holds_for_its_answers(
    settings: Settings, sim: ExchangeSim
) -> None:
    capped = settings.model_copy(update={"upstream_max_bytes": {**ANSWER_CAPS, "orderbook": 64}})
    service = MarketData.from_settings(capped)
    try:
        await service.ticker("binance", "BTC/USDT")  # a ticker is within its own cap
        with pytest.raises(errors.UpstreamBadResponse):
            await service.order_book("binance", "BTC/USDT")
    finally:
        await service.close()


async def test_a_ban_with_an_unusable_retry_after_still_stops_every_call(
    service: MarketData, sim: ExchangeSim
) -> None:
    symbols = spot_symbols(sim, "binance")[:4]
    await service.load_markets("binance")
    # Given an exchange that bans us with "Retry-After: inf",
    sim.inject("binance", "418", endpoint="ticker", times=10, retry_after="inf")
    sim.reset_calls()
    # when four tickers are asked for in a row,
    failures: list[errors.ProxyError] = []
    for symbol in symbols:
        with pytest.raises(errors.ProxyError) as failed:
            await service.ticker("binance", symbol)
        failures.append(failed.value)
    # then the exchange was asked once: the ban opened the circuit (and paused the fleet),
    assert sim.calls("binance", "ticker") == 1
    assert isinstance(failures[0], errors.UpstreamBanned)
    # and every answer names a finite wait, bounded by the service, never the exchange's.
    for failure in failures:
        assert failure.status == 503
        assert failure.retry_after is not None
        assert 0 < failure.retry_after <= service.settings.retry_after_max_seconds


@pytest.mark.timeout(120)
async def test_forty_slow_history_requests_leave_a_cold_ticker_a_bounded_wait(
    settings: Settings, sim: ExchangeSim
) -> None:
    # Given an exchange that takes 2 requests a second from the fleet and answers slowly,
    slow = settings.model_copy(
        update={
            "exchange_limits": {"binance": {"requests_per_second": 2, "lease": 1}},
            "upstream_timeout_ms": 1500,
            "upstream_queue_max": 8,
        }
    )
    service = MarketData.from_settings(slow)
    symbols = spot_symbols(sim, "binance")
    try:
        await service.load_markets("binance")
        sim.set_latency(0.2)
        # when forty distinct weekly histories are asked for at once,
        history = [
            asyncio.ensure_future(
                service.candles("binance", symbol, timeframe="1w", since=1_500_000_000_000)
            )
            for symbol in symbols[:40]
        ]
        await asyncio.sleep(0)  # they are queued first
        # and then a client's cold ticker,
        started = time.monotonic()
        ticker: Any = await asyncio.gather(
            service.ticker("binance", symbols[41]), return_exceptions=True
        )
        waited = time.monotonic() - started
        outcomes = await asyncio.gather(*history, return_exceptions=True)
    finally:
        await service.close()
    # then the ticker was answered, or refused as busy, within the one deadline of a call
    # (its share of the queue included), never after the forty histories,
    assert waited < slow.upstream_timeout_ms / 1000 + 2.0
    result = ticker[0]
    assert not isinstance(result, BaseException) or isinstance(result, errors.UpstreamBusy)
    # and each history was answered, refused as busy (with a wait), or ran out of its one
    # deadline after it left the queue late: none failed otherwise.
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    busy = [o for o in refused if isinstance(o, errors.UpstreamBusy)]
    late = [o for o in refused if isinstance(o, errors.UpstreamTimeout)]
    assert len(busy) + len(late) == len(refused), refused
    assert busy, "the queue of eight never refused anyone"
    assert all(o.retry_after is not None for o in busy)


async def test_refusals_under_a_fleet_pause_leave_the_containers_circuit_closed(
    settings: Settings, sim: ExchangeSim
) -> None:
    # Given a container that met a 429 asking for 1 s,
    met = MarketData.from_settings(settings)
    other = MarketData.from_settings(settings)
    try:
        await met.load_markets("binance")
        await other.load_markets("binance")
        sim.inject("binance", "429", endpoint="ticker", retry_after=1)
        with pytest.raises(errors.UpstreamRateLimited):
            await met.ticker("binance", "BTC/USDT")
        sim.reset_calls()
        # when another container is refused by that pause, many times over,
        symbols = spot_symbols(sim, "binance")[1:8]
        for symbol in symbols:
            with pytest.raises(errors.UpstreamRateLimited) as refused:
                await other.ticker("binance", symbol)
            assert refused.value.retry_after is not None
            assert refused.value.retry_after <= 1
        assert sim.calls("binance", "ticker") == 0
        # then its own circuit stayed closed (the refusals were the fleet's, not the
        # exchange failing): once the pause is over it calls the exchange again.
        assert other._gateway.circuits.state("binance") == "closed"
    finally:
        await met.close()
        await other.close()


async def test_the_answers_of_one_markets_download_share_one_cap(
    settings: Settings, sim: ExchangeSim
) -> None:
    # Given a markets cap of 1 MiB, and an exchange whose markets answers (ccxt asks for
    # spot, linear and inverse at once) are each 700 KiB, under the cap alone,
    capped = settings.model_copy(update={"upstream_max_bytes": {**ANSWER_CAPS, "markets": MIB}})
    sim.inject("binance", "huge", endpoint="markets", times=10, size_bytes=700 * 1024)
    service = MarketData.from_settings(capped)
    try:
        # when the markets are loaded,
        with pytest.raises(errors.UpstreamBadResponse) as refused:
            await service.load_markets("binance")
    finally:
        await service.close()
    # then together they are past it: refused as too large, not read to the end.
    assert "larger than" in refused.value.detail


async def test_a_batch_refused_for_one_delisted_symbol_fails_that_symbol_only(
    service: MarketData, sim: ExchangeSim, settings: Settings
) -> None:
    symbols = spot_symbols(sim, "binance")[:3]
    await service.load_markets("binance")
    # Given an exchange that refuses a batch of tickers with its "invalid symbol" (as Binance
    # does when one symbol of it was just delisted), and the single ticker of that symbol too,
    sim.inject("binance", "unknown_market", endpoint="tickers")
    sim.inject("binance", "unknown_market", endpoint="ticker")
    # when a batch of three is asked for,
    answer = await service.tickers("binance", symbols)
    # then one symbol is reported as unknown, and the two others are answered,
    assert len(answer.data["errors"]) == 1
    assert [problem["code"] for problem in answer.data["errors"].values()] == ["unknown_market"]
    assert len(answer.data["tickers"]) == 2
    # and another container on the same table does not take the others for unknown markets.
    other = MarketData.from_settings(settings)
    try:
        for symbol in answer.data["tickers"]:
            assert (await other.ticker("binance", symbol)).data["last"] > 0
    finally:
        await other.close()


async def test_a_not_found_to_the_markets_download_is_the_exchange_failing(
    settings: Settings, sim: ExchangeSim
) -> None:
    # Given an exchange that answers its markets download with "invalid symbol",
    sim.inject("binance", "unknown_market", endpoint="markets", times=10)
    service = MarketData.from_settings(settings)
    try:
        # when a ticker is asked for before any markets were known,
        with pytest.raises(errors.ProxyError) as failed:
            await service.ticker("binance", "BTC/USDT")
    finally:
        await service.close()
    # then it is the exchange being unavailable, to retry, not a market that does not exist.
    assert failed.value.code == "upstream_unavailable"
    assert failed.value.retryable
