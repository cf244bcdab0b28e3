"""The read-through engine as the service wires it, on any store (for the engine's tests)."""

from __future__ import annotations

from collections.abc import Callable

from market_proxy.cache.engine import ReadThrough
from market_proxy.cache.leases import Leases
from market_proxy.cache.memory import MemoryTier
from market_proxy.cache.shared import Outage, SharedTier
from market_proxy.cache.store import CacheStore
from market_proxy.clock import now_ms


def read_through(
    store: CacheStore | None,
    clock: Callable[[], int] = now_ms,
    *,
    lease_s: float = 5,
    lease_wait_s: float = 3,
    negative_ttl_s: float = 60,
    refresh_in_background: bool = False,
    backoff_s: float = 5,
) -> ReadThrough:
    """One container's engine: its own memory and lease identity, on ``store``."""
    shared = SharedTier(store, Outage(backoff_s, clock))
    leases = Leases(shared, lease_s=lease_s, wait_s=lease_wait_s, clock=clock)
    return ReadThrough(
        MemoryTier(10_000_000),
        shared,
        leases,
        negative_ttl_s=negative_ttl_s,
        refresh_in_background=refresh_in_background,
        clock=clock,
    )
