"""The composition root: the parts behind the :class:`MarketData` facade, wired once per
container from the settings (the cache tiers, leases, the fleet budget, the gateway to the
exchanges, the candle store and the demand log)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from market_proxy.budget import Budget
from market_proxy.cache.dynamodb import DynamoDBStore
from market_proxy.cache.engine import ReadThrough
from market_proxy.cache.leases import Leases
from market_proxy.cache.memory import MemoryTier
from market_proxy.cache.shared import Outage, SharedTier, Tiers
from market_proxy.candles import CandleStore
from market_proxy.demand import DemandLog
from market_proxy.exchanges.clients import exchange_class
from market_proxy.exchanges.gateway import ExchangeGateway
from market_proxy.limits import Limit, limit_for
from market_proxy.settings import Settings, SettingsError


@dataclass(frozen=True, slots=True)
class Parts:
    shared: SharedTier
    memory: MemoryTier
    leases: Leases
    cache: ReadThrough
    budget: Budget | None
    gateway: ExchangeGateway
    candles: CandleStore
    demand: DemandLog


def wire(settings: Settings, store: DynamoDBStore | None, clock: Callable[[], int]) -> Parts:
    """Every part, over ``store`` (None: no table, memory only). Raises
    :class:`SettingsError` when ``EXCHANGES`` names an exchange ccxt does not know."""
    unknown = [ex for ex in settings.exchanges if exchange_class(ex) is None]
    if unknown:
        raise SettingsError(f"EXCHANGES names exchanges ccxt does not know: {unknown}")
    outage = Outage(settings.cache_store_backoff_seconds, clock)
    shared = SharedTier(store, outage)
    memory = MemoryTier(settings.memory_cache_max_bytes)
    leases = Leases(
        shared, lease_s=settings.lease_seconds, wait_s=settings.lease_wait_seconds, clock=clock
    )
    cache = ReadThrough(
        memory,
        shared,
        leases,
        negative_ttl_s=settings.negative_ttl_seconds,
        refresh_in_background=settings.refresh_in_background,
        clock=clock,
        refresh_ahead_fraction=settings.refresh_ahead_fraction,
    )

    @functools.cache
    def limit(exchange: str) -> Limit:
        return limit_for(settings, exchange, gateway.client(exchange).rateLimit)

    budget = (
        Budget(
            store,
            outage,
            limit,
            fallback_share=settings.budget_fallback_share,
            clock=clock,
            geo_block_s=settings.circuit_geo_block_seconds,
        )
        if settings.fleet_budget
        else None
    )
    gateway = ExchangeGateway(settings, cache, clock, budget)
    return Parts(
        shared=shared,
        memory=memory,
        leases=leases,
        cache=cache,
        budget=budget,
        gateway=gateway,
        candles=CandleStore(settings, cache, Tiers(memory, shared, clock), leases, gateway, clock),
        demand=DemandLog(store, outage, clock, flush_every_s=settings.demand_flush_seconds),
    )
