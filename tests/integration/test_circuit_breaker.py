"""The circuit breaker in a container: the exchange stops receiving calls while it is open,
answers say so, and calls resume after one successful probe."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal
from market_proxy import errors
from market_proxy.answers import Answer
from market_proxy.cache.client import make_store
from market_proxy.clock import now_ms
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.clock import SharedClock
from tests.support.emf import metric_total
from tests.support.lambda_api import LambdaApi, Reply, lambda_api_on_new_table
from tests.support.output import captured

pytestmark = pytest.mark.integration

THRESHOLD = 3
COOLDOWN_S = 20


@pytest.fixture(scope="module")
def api(dynamodb_local: DynamoDBLocal, exchange_sim_session: ExchangeSim) -> Iterator[LambdaApi]:
    with lambda_api_on_new_table(dynamodb_local.endpoint, exchange_sim_session) as api:
        yield api


@pytest.fixture
def clock(sim: ExchangeSim) -> SharedClock:
    return SharedClock(now_ms(), sim)


@pytest.fixture
def container(api: LambdaApi, clock: SharedClock) -> MarketData:
    """A new container whose circuits open after THRESHOLD failures, for COOLDOWN_S."""
    settings: Settings = api.module.service.settings.model_copy(
        update={"circuit_failure_threshold": THRESHOLD, "circuit_cooldown_seconds": COOLDOWN_S}
    )
    return api.container(settings, clock)


def markets(sim: ExchangeSim, exchange: str) -> list[str]:
    """Spot markets of ``exchange``, each a key of its own (no remembered error in common)."""
    return [market.id for market in sim.book.of_kind(exchange, "spot")]


def assert_circuit_open(reply: Reply, retry_after: int, reason: str) -> None:
    problem = reply.json()
    assert reply.status == 503
    assert reply.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "circuit_open"
    assert problem["retryable"] is True
    assert problem["reason"] == reason
    assert reply.headers["retry-after"] == str(retry_after)


def test_repeated_failures_stop_calls_until_a_probe_succeeds(
    api: LambdaApi, sim: ExchangeSim, clock: SharedClock, container: MarketData
) -> None:
    ids = markets(sim, "binance")
    # Given Binance failing every ticker request,
    sim.inject("binance", "503", endpoint="ticker", times=1000)
    with captured() as printed:
        # when THRESHOLD different tickers fail in a row,
        failed = [api.get(f"/ticker/binance/{market}") for market in ids[:THRESHOLD]]
        # then, for the cool-down, others are refused without a call to Binance,
        refused = [api.get(f"/ticker/binance/{market}") for market in ids[THRESHOLD:][:4]]
        clock.advance(COOLDOWN_S / 2)
        later = api.get(f"/ticker/binance/{ids[THRESHOLD + 4]}")
        health_while_open = api.get("/health").json()
        calls_while_open = sim.calls("binance", "ticker")
        # while Kraken, with a circuit of its own, is served as usual;
        kraken = api.get(f"/ticker/kraken/{markets(sim, 'kraken')[-1]}")
        # and once the cool-down has passed and Binance has recovered, one probe goes
        # through and closes the circuit, after which calls flow again.
        sim.clear_faults()
        clock.advance(COOLDOWN_S / 2)
        probe = api.get(f"/ticker/binance/{ids[THRESHOLD + 5]}")
        after = api.get(f"/ticker/binance/{ids[THRESHOLD + 6]}")
        health_after = api.get("/health").json()

    assert [r.json()["code"] for r in failed] == ["upstream_unavailable"] * THRESHOLD
    assert failed[-1].headers["retry-after"] == str(COOLDOWN_S), "the pause, not the 503's 5 s"
    for reply in refused:
        assert_circuit_open(reply, COOLDOWN_S, "upstream_unavailable")
    assert_circuit_open(later, COOLDOWN_S // 2, "upstream_unavailable")
    assert calls_while_open == THRESHOLD
    assert kraken.status == 200
    assert (probe.status, probe.headers["x-cache"]) == (200, "upstream")
    assert (after.status, after.headers["x-cache"]) == (200, "upstream")
    assert sim.calls("binance", "ticker") == THRESHOLD + 2
    # and /health says what operators need to know meanwhile.
    assert health_while_open["status"] == "degraded"
    assert health_while_open["circuits"]["binance"] == "open"
    assert set(health_while_open["circuits"].values()) == {"open", "closed"}
    assert (health_after["status"], health_after["circuits"]["binance"]) == ("ok", "closed")
    assert metric_total(printed.getvalue(), "CircuitOpened", exchange="binance") == 1
    assert metric_total(printed.getvalue(), "CircuitRejected", exchange="binance") == 5
    assert metric_total(printed.getvalue(), "CircuitProbes", exchange="binance") == 1
    assert metric_total(printed.getvalue(), "CircuitClosed", exchange="binance") == 1


def test_after_a_ban_a_stale_ticker_is_served_marked_and_a_cold_one_is_refused(
    api: LambdaApi, sim: ExchangeSim, clock: SharedClock, container: MarketData
) -> None:
    held, banned, cold = markets(sim, "kraken")[:3]
    # Given a ticker fetched earlier and now past freshness (within stale-if-error),
    fetched = api.get(f"/ticker/kraken/{held}")
    clock.advance(container.settings.ticker_ttl_seconds + container.settings.ticker_swr_seconds + 1)
    # and Kraken locking us out for 60 s,
    sim.inject("kraken", "418", endpoint="ticker", retry_after=60)
    ban = api.get(f"/ticker/kraken/{banned}")
    assert (ban.status, ban.json()["code"], ban.headers["retry-after"]) == (
        503,
        "upstream_banned",
        "60",
    )
    sim.reset_calls()
    clock.advance(15)

    # when clients ask for the held ticker and for one never fetched,
    stale = api.get(f"/ticker/kraken/{held}")
    refused = api.get(f"/ticker/kraken/{cold}")

    # then the held one is served, marked with why, and the other refused with the ban's
    # remaining time, and Kraken hears nothing of either.
    assert stale.status == 200
    assert stale.headers["x-cache"] == "stale"
    assert stale.json()["freshness"]["stale_reason"] == "circuit_open"
    assert stale.json()["last"] == fetched.json()["last"]
    assert_circuit_open(refused, 45, "upstream_banned")
    assert sim.calls("kraken") == 0


def test_while_half_open_only_one_probe_reaches_the_exchange(
    api: LambdaApi, sim: ExchangeSim, clock: SharedClock, container: MarketData
) -> None:
    # Concurrent requests in one container: the stream function and `make run` (uvicorn).
    service = container
    ids = markets(sim, "binance")[-6:]  # keys the first test left no errors on
    sim.inject("binance", "418", endpoint="ticker", retry_after=5)
    with pytest.raises(errors.UpstreamBanned):
        api.run(service.ticker("binance", ids[0]))
    clock.advance(5)
    sim.reset_calls()
    sim.set_latency(0.2)

    async def five_at_once() -> list[Answer | BaseException]:
        return await asyncio.gather(
            *(service.ticker("binance", market) for market in ids[1:6]), return_exceptions=True
        )

    outcomes = api.run(five_at_once())

    assert sim.calls("binance", "ticker") == 1
    refused = [o for o in outcomes if isinstance(o, errors.CircuitOpen)]
    assert len(refused) == 4
    assert all(error.retry_after_header == "1" for error in refused)
    assert sum(isinstance(o, Answer) for o in outcomes) == 1


def test_an_open_circuit_is_this_containers_own_and_holds_no_other_up(
    api: LambdaApi, sim: ExchangeSim, clock: SharedClock, container: MarketData
) -> None:
    failing = markets(sim, "coinbaseexchange")[
        6 : 6 + THRESHOLD
    ]  # keys the other tests leave alone
    paused = markets(sim, "coinbaseexchange")[5]
    # Given a container whose Coinbase circuit repeated failures opened (a failing exchange
    # is this container's own view: a ban would pause the whole fleet, see below),
    sim.inject("coinbaseexchange", "503", endpoint="ticker", times=THRESHOLD)
    for market in failing:
        assert (
            api.get(f"/ticker/coinbaseexchange/{market}").json()["code"] == "upstream_unavailable"
        )
    # when it refuses a ticker for its open circuit,
    assert api.get(f"/ticker/coinbaseexchange/{paused}").json()["code"] == "circuit_open"
    # then the table holds neither an error nor a lease for that ticker,
    key = f"ticker#coinbaseexchange#{paused.removesuffix('-USDT')}/USDT"
    stored = api.run(make_store(container.settings).get(key, consistent=True))
    assert stored is not None
    assert (stored.error, stored.lease_owner) == (None, None)
    # and another container, whose circuit is closed, fetches it at once.
    api.container(container.settings, clock)
    sim.reset_calls()
    other = api.get(f"/ticker/coinbaseexchange/{paused}")
    assert (other.status, other.headers["x-cache"]) == (200, "upstream")
    assert sim.calls("coinbaseexchange", "ticker") == 1


def test_a_ban_one_container_met_pauses_every_container(
    api: LambdaApi, sim: ExchangeSim, clock: SharedClock, container: MarketData
) -> None:
    banned, other_key = markets(sim, "bybit")[2:4]
    # Given a container that met Bybit's ban (its 403 "access too frequent"),
    sim.inject("bybit", "418", endpoint="ticker", retry_after=30)
    assert api.get(f"/ticker/bybit/{banned}").json()["code"] == "upstream_banned"
    # when another container, which never called Bybit, is asked for a ticker,
    api.container(container.settings, clock)
    sim.reset_calls()
    refused = api.get(f"/ticker/bybit/{other_key}")
    # then it does not call Bybit either, and says for how long calls are paused;
    assert refused.status == 503
    assert refused.json()["code"] == "upstream_banned"
    assert int(refused.headers["retry-after"]) in (29, 30)
    assert sim.calls("bybit", "ticker") == 0
    # and once the pause is over, calls flow again.
    clock.advance(31)
    assert api.get(f"/ticker/bybit/{other_key}").status == 200
