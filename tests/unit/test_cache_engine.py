"""The engine's promises, on an in-memory store: tiers, coalescing, leases, stale answers.

(The DynamoDB adapter keeps the store's side of these promises: tests/unit/test_dynamodb_store.py
against moto, tests/integration/test_leases.py against DynamoDB Local.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from market_proxy import errors
from market_proxy.cache.engine import ReadThrough
from market_proxy.cache.store import CacheStore
from market_proxy.clock import now_ms
from market_proxy.keys import Kind, MarketKey
from market_proxy.settings import DataPolicy
from tests.support.engine import read_through
from tests.support.memory_store import MemoryStore

pytestmark = pytest.mark.anyio
POLICY = DataPolicy(fresh_s=2, swr_s=10, sie_s=60)
KEY = MarketKey(Kind.TICKER, "binance", "BTC/USDT")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


class Clock:
    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)


class Upstream:
    """A loader that counts its calls, optionally slow or failing."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.fail: errors.ProxyError | None = None

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return {"last": 100.0 + self.calls}


def engine(
    store: CacheStore | None, clock: Callable[[], int] = now_ms, **kwargs: Any
) -> ReadThrough:
    """A new container's engine on the shared ``store``."""
    return read_through(store, clock, **kwargs)


async def test_a_miss_loads_once_then_memory_serves_without_loading(store: MemoryStore) -> None:
    cache, upstream = engine(store), Upstream()
    first = await cache.get(KEY, POLICY, upstream)
    second = await cache.get(KEY, POLICY, upstream)
    assert (first.source, second.source) == ("upstream", "l1")
    assert second.payload == first.payload == {"last": 101.0}
    assert upstream.calls == 1


async def test_another_container_is_served_from_the_shared_table(store: MemoryStore) -> None:
    upstream = Upstream()
    await engine(store).get(KEY, POLICY, upstream)
    other = await engine(store).get(KEY, POLICY, upstream)
    assert other.source == "l2"
    assert other.payload == {"last": 101.0}
    assert upstream.calls == 1


async def test_freshness_is_judged_from_stamps_not_from_the_item_still_existing(
    store: MemoryStore,
) -> None:
    clock, upstream = Clock(), Upstream()
    await engine(store, clock).get(KEY, POLICY, upstream)
    clock.advance(POLICY.fresh_s + 0.001)
    late = await engine(store, clock).get(KEY, POLICY, upstream)
    assert late.source == "upstream"
    assert upstream.calls == 2


async def test_concurrent_misses_in_one_process_make_one_upstream_call(
    store: MemoryStore,
) -> None:
    cache, upstream = engine(store), Upstream(delay=0.05)
    answers = await asyncio.gather(*(cache.get(KEY, POLICY, upstream) for _ in range(200)))
    assert upstream.calls == 1
    assert {a.payload["last"] for a in answers} == {101.0}


async def test_a_crashed_lease_holder_blocks_only_until_its_lease_lapses(
    store: MemoryStore,
) -> None:
    started = now_ms()
    taken, _ = await store.acquire_lease(KEY.text, "crashed-container", started + 300, started)
    assert taken
    loaded_at: list[int] = []

    async def upstream() -> dict[str, float]:
        loaded_at.append(now_ms())
        return {"last": 1.0}

    answer = await engine(store, lease_wait_s=5).get(KEY, POLICY, upstream)
    assert answer.source == "upstream"
    assert len(loaded_at) == 1
    assert loaded_at[0] >= started + 300


async def test_waiters_give_up_after_the_wait_budget_and_load_themselves(
    store: MemoryStore,
) -> None:
    started = now_ms()
    await store.acquire_lease(KEY.text, "slow-container", started + 60_000, started)
    upstream = Upstream()
    answer = await engine(store, lease_wait_s=0.2).get(KEY, POLICY, upstream)
    assert answer.source == "upstream"
    assert upstream.calls == 1


async def test_stale_is_served_at_once_while_another_caller_revalidates(
    store: MemoryStore,
) -> None:
    clock, upstream = Clock(), Upstream(delay=0.1)
    cache = engine(store, clock)
    await cache.get(KEY, POLICY, upstream)
    clock.advance(POLICY.fresh_s + 1)
    refresher = asyncio.create_task(cache.get(KEY, POLICY, upstream))
    await asyncio.sleep(0)
    meanwhile = await cache.get(KEY, POLICY, upstream)
    assert meanwhile.source == "stale"
    assert meanwhile.freshness.stale_reason == "revalidating"
    assert meanwhile.payload == {"last": 101.0}
    refreshed = await refresher
    assert refreshed.source == "upstream"
    assert refreshed.payload == {"last": 102.0}
    assert upstream.calls == 2


async def test_with_background_refresh_even_the_first_caller_gets_stale_at_once(
    store: MemoryStore,
) -> None:
    clock, upstream = Clock(), Upstream(delay=0.05)
    cache = engine(store, clock, refresh_in_background=True)
    await cache.get(KEY, POLICY, upstream)
    clock.advance(POLICY.fresh_s + 1)
    first = await cache.get(KEY, POLICY, upstream)
    assert first.source == "stale"
    await cache.close()
    assert (await cache.get(KEY, POLICY, upstream)).payload == {"last": 102.0}


async def test_past_the_revalidate_window_callers_wait_for_the_refresh(
    store: MemoryStore,
) -> None:
    clock, upstream = Clock(), Upstream()
    cache = engine(store, clock)
    await cache.get(KEY, POLICY, upstream)
    clock.advance(POLICY.fresh_s + POLICY.swr_s + 1)
    assert (await cache.get(KEY, POLICY, upstream)).source == "upstream"


async def test_stale_is_served_and_marked_when_the_exchange_fails(store: MemoryStore) -> None:
    clock, upstream = Clock(), Upstream()
    cache = engine(store, clock)
    await cache.get(KEY, POLICY, upstream)
    clock.advance(POLICY.fresh_s + POLICY.swr_s + 1)
    upstream.fail = errors.UpstreamUnavailable("binance: down")
    answer = await cache.get(KEY, POLICY, upstream)
    assert answer.source == "stale"
    assert answer.freshness.stale_reason == "upstream_unavailable"
    assert answer.payload == {"last": 101.0}


async def test_past_the_error_window_the_failure_is_raised(store: MemoryStore) -> None:
    clock, upstream = Clock(), Upstream()
    cache = engine(store, clock)
    await cache.get(KEY, POLICY, upstream)
    clock.advance(POLICY.fresh_s + POLICY.sie_s + 1)
    upstream.fail = errors.UpstreamTimeout("binance: slow")
    with pytest.raises(errors.UpstreamTimeout):
        await cache.get(KEY, POLICY, upstream)


async def test_a_failure_is_remembered_briefly_so_callers_do_not_hammer_the_exchange(
    store: MemoryStore,
) -> None:
    upstream = Upstream()
    upstream.fail = errors.UpstreamRateLimited("binance: slow down", retry_after=30)
    with pytest.raises(errors.UpstreamRateLimited):
        await engine(store).get(KEY, POLICY, upstream)
    with pytest.raises(errors.UpstreamRateLimited) as again:
        await engine(store).get(KEY, POLICY, upstream)  # another container
    assert upstream.calls == 1
    assert again.value.retry_after == 30


async def test_no_such_market_is_cached_negatively_across_containers(store: MemoryStore) -> None:
    clock, upstream = Clock(), Upstream()
    upstream.fail = errors.UnknownMarket("binance: no market FOO/BAR")
    for container in (engine(store, clock), engine(store, clock)):
        with pytest.raises(errors.UnknownMarket):
            await container.get(KEY, POLICY, upstream)
    assert upstream.calls == 1
    clock.advance(61)
    with pytest.raises(errors.UnknownMarket):
        await engine(store, clock).get(KEY, POLICY, upstream)
    assert upstream.calls == 2


async def test_when_the_table_is_down_requests_still_go_upstream_and_succeed(
    store: MemoryStore,
) -> None:
    store.failing = "EndpointConnectionError"
    cache, upstream = engine(store), Upstream()
    answer = await cache.get(KEY, POLICY, upstream)
    assert answer.source == "upstream"
    assert answer.payload == {"last": 101.0}
    assert (await cache.get(KEY, POLICY, upstream)).source == "l1"


async def test_after_the_table_fails_as_a_whole_it_is_left_alone_for_the_backoff(
    store: MemoryStore,
) -> None:
    # Given a table that fails every call, and a container that just met the failure,
    clock, upstream = Clock(), Upstream()
    store.failing = "ThrottlingException"
    cache = engine(store, clock, backoff_s=5)
    await cache.get(KEY, POLICY, upstream)
    tried = sum(store.calls.values())

    # when other keys are asked for within the back-off, and after it,
    other = MarketKey(Kind.TICKER, "binance", "ETH/USDT")
    await cache.get(other, POLICY, upstream)
    resting = sum(store.calls.values())
    clock.advance(5.1)
    await cache.get(MarketKey(Kind.TICKER, "binance", "SOL/USDT"), POLICY, upstream)

    # then the table was asked once, not again while resting, and again afterwards.
    assert tried == 1
    assert resting == tried
    assert sum(store.calls.values()) > resting


async def test_without_a_store_the_engine_still_coalesces_in_memory() -> None:
    cache, upstream = engine(None), Upstream(delay=0.02)
    await asyncio.gather(*(cache.get(KEY, POLICY, upstream) for _ in range(50)))
    assert upstream.calls == 1
