"""The fleet's upstream budget, on an in-memory store: leases, windows, pauses, priorities,
and the local share when the table fails. Time is driven: a wall clock the test moves."""

from __future__ import annotations

from typing import Any

import pytest

from market_proxy import errors
from market_proxy.budget import Budget, in_background
from market_proxy.cache.shared import Outage
from market_proxy.limits import Limit
from tests.support.memory_store import MemoryStore

pytestmark = pytest.mark.anyio
LIMIT = Limit(per_window=10, lease=4, reserve=4)


class Wall:
    def __init__(self) -> None:
        self.now = 1_000_000_000_000

    def __call__(self) -> int:
        return self.now


def budget(store: MemoryStore | None, wall: Wall, **kwargs: float) -> Budget:
    """One container's budget on the fleet's ``store`` (its data clock is the wall here)."""
    return Budget(
        store,
        Outage(5, wall),
        lambda _exchange: LIMIT,
        fallback_share=kwargs.get("share", 0.2),
        clock=wall,
        wall=wall,
    )


async def spend_all(container: Budget, wall: Wall, cost: float = 1) -> int:
    """Calls this container makes in the current window before it would have to wait."""
    made = 0
    while True:
        try:
            await container.spend("binance", cost, deadline_ms=wall.now)  # no waiting
        except errors.UpstreamBusy:
            return made
        made += 1


async def test_containers_together_never_spend_more_than_one_window_allows() -> None:
    store, wall = MemoryStore(), Wall()
    fleet = [budget(store, wall) for _ in range(5)]
    spent = [await spend_all(container, wall) for container in fleet]
    assert sum(spent) <= LIMIT.per_window
    assert spent[0] >= 1
    assert sum(spent) >= LIMIT.per_window - LIMIT.lease
    wall.now += 1000  # the next window
    assert await spend_all(fleet[-1], wall) >= 1


async def test_a_lease_buys_several_calls_for_one_table_write() -> None:
    store, wall = MemoryStore(), Wall()
    container = budget(store, wall)
    made = await spend_all(container, wall)
    assert made == LIMIT.per_window
    assert store.calls["take_units"] < made, "leases grow with the container's own use"


async def test_background_work_gives_way_and_is_refused_at_once() -> None:
    store, wall = MemoryStore(), Wall()
    container = budget(store, wall)
    with in_background():
        background = await spend_all(container, wall)
    foreground = await spend_all(container, wall)
    assert background <= LIMIT.per_window - LIMIT.reserve
    assert background + foreground == LIMIT.per_window, "what is left is the clients'"


async def test_a_pause_one_container_wrote_stops_another_with_the_time_left() -> None:
    store, wall = MemoryStore(), Wall()
    banned, other = budget(store, wall), budget(store, wall)
    await banned.pause("binance", wall.now + 30_000, errors.UpstreamBanned.code)
    with pytest.raises(errors.UpstreamBanned) as refused:
        await other.spend("binance", 1, deadline_ms=wall.now + 5000)
    assert refused.value.retry_after == 30
    wall.now += 30_000
    await other.spend("binance", 1, deadline_ms=wall.now)


async def test_a_rate_limit_pause_is_said_as_one() -> None:
    store, wall = MemoryStore(), Wall()
    await budget(store, wall).pause("binance", wall.now + 2000, errors.UpstreamRateLimited.code)
    with pytest.raises(errors.UpstreamRateLimited):
        await budget(store, wall).spend("binance", 1, deadline_ms=wall.now + 5000)


async def test_when_the_table_fails_each_container_keeps_to_a_small_local_share() -> None:
    store, wall = MemoryStore(), Wall()
    store.failing = "ThrottlingException"
    container = budget(store, wall, share=0.2)
    made = await spend_all(container, wall)
    assert made == 2, "a fifth of the window's 10"
    assert store.calls["take_units"] == 1, "the failing table is then left alone (resting)"


async def test_a_local_share_under_one_request_a_window_is_kept_on_average() -> None:
    # Given an exchange that takes one request a second from the whole fleet, and the table
    # failing, so that each container keeps to a tenth of that on its own,
    store, wall = MemoryStore(), Wall()
    store.failing = "ThrottlingException"
    one_a_second = Limit(per_window=1, lease=1, reserve=0)
    container = Budget(
        store, Outage(5, wall), lambda _: one_a_second, fallback_share=0.1, clock=wall, wall=wall
    )
    # when it asks every second for a minute,
    made = 0
    for _ in range(60):
        try:
            await container.spend("kraken", 1, deadline_ms=wall.now)
            made += 1
        except errors.UpstreamBusy:
            pass
        wall.now += 1000
    # then it made one request at once and one every ten seconds after: 6, not 60.
    assert made == 6


async def test_a_request_costlier_than_a_window_still_goes_alone() -> None:
    store, wall = MemoryStore(), Wall()
    container = budget(store, wall)
    await container.spend("binance", 25, deadline_ms=wall.now)
    with pytest.raises(errors.UpstreamBusy):
        await container.spend("binance", 1, deadline_ms=wall.now)


@pytest.fixture(params=["memory", "dynamodb"])
def fleet_store(request: pytest.FixtureRequest) -> Any:
    """The budget's table: the in-memory one the tests above use, and the real adapter's
    conditional writes on moto."""
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("store")


@pytest.mark.parametrize(
    ("per_window", "cost", "most"),
    [
        (1 / 3, 1, 10),  # a slow exchange (ccxt's rateLimit 3000 ms): one request in three s
        (20, 40, 15),  # a request of 40 units on a 20-unit second (Binance's every ticker)
        (1, 1.2, 26),  # Kraken's candles: 1.2 units a request on one unit a second
    ],
)
async def test_requests_costlier_than_a_window_keep_the_exchanges_rate_on_average(
    fleet_store: Any, per_window: float, cost: float, most: int
) -> None:
    wall = Wall()
    limit = Limit(per_window=per_window, lease=1, reserve=0)
    fleet = [
        Budget(
            fleet_store,
            Outage(5, wall),
            lambda _exchange: limit,
            fallback_share=0.2,
            clock=wall,
            wall=wall,
        )
        for _ in range(4)
    ]
    # Given four containers that each ask as often as they can for thirty seconds,
    made = 0
    for _ in range(30):
        for container in fleet:
            made += await spend_all(container, wall, cost)
        wall.now += 1000
    # then the fleet spent what the exchange refills in thirty seconds (and one request ahead).
    assert made * cost <= per_window * 30 + cost
    assert made <= most
    assert made * cost >= per_window * 30 - 2 * cost, "and the budget was used, not wasted"


async def test_background_work_steps_aside_once_a_client_found_the_budget_spent() -> None:
    store, wall = MemoryStore(), Wall()
    container = budget(store, wall)
    # Given a window whose budget clients spent, and one more client request refused,
    await spend_all(container, wall)
    with pytest.raises(errors.UpstreamBusy):
        await container.spend("binance", 1, deadline_ms=wall.now)
    # then, in the next window, background work gives way at once, reserve or not,
    wall.now += 1000
    with in_background(), pytest.raises(errors.UpstreamBusy):
        await container.spend("binance", 1, deadline_ms=wall.now + 5000)
    assert await spend_all(container, wall) == LIMIT.per_window, "clients have it all"
    # and once clients stopped finding it short, background work has its share again.
    wall.now += 2000
    with in_background():
        assert await spend_all(container, wall) == LIMIT.per_window - LIMIT.reserve


async def test_a_geo_block_one_container_met_stops_every_other_without_a_call() -> None:
    store, wall = MemoryStore(), Wall()
    blocked = errors.UpstreamGeoBlocked("binance refuses to serve this location")
    await budget(store, wall).heed("binance", blocked, None)
    wall.now += 600_000  # ten minutes later, another container
    with pytest.raises(errors.UpstreamGeoBlocked) as refused:
        await budget(store, wall).spend("binance", 1, deadline_ms=wall.now + 5000)
    assert not refused.value.retryable
