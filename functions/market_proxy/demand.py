"""What clients ask for, tallied cheaply, so the warmer can keep the most-asked keys warm.

Each container counts in memory and adds its counts to an hourly tally in the table at most
once a minute: one write per container per minute, never one per request. It reaches the
table through the cache engine, so while the engine rests the table after a failure, the
tally waits too instead of making a request pay for another failing call.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from market_proxy.cache.engine import CacheEngine
from market_proxy.cache.store import CacheUnavailable

HOUR_MS = 3_600_000


def tally_key(hour_start_ms: int) -> str:
    return f"demand#{time.strftime('%Y%m%d%H', time.gmtime(hour_start_ms / 1000))}"


class DemandLog:
    def __init__(
        self,
        cache: CacheEngine,
        clock: Callable[[], int],
        *,
        flush_every_s: float = 60.0,
        keep_top: int = 100,
    ) -> None:
        self._cache = cache
        self._clock = clock
        self._every_ms = round(flush_every_s * 1000)
        self._keep_top = keep_top
        self._counts: Counter[str] = Counter()
        self._last_flush = clock()

    def note(self, key: str) -> None:
        self._counts[key] += 1

    async def maybe_flush(self) -> None:
        """Add this container's counts to the shared tally if a minute has passed (one
        write; none while the table is resting, and then the counts wait for the next)."""
        now = self._clock()
        store = self._cache.store
        if store is None or not self._counts or now - self._last_flush < self._every_ms:
            return
        counts = dict(self._counts.most_common(self._keep_top))
        self._counts.clear()
        self._last_flush = now
        hour = now // HOUR_MS * HOUR_MS
        try:
            await store.add_counts(tally_key(hour), counts, (hour + 3 * HOUR_MS) // 1000)
        except CacheUnavailable as exc:
            self._cache.store_failed(exc)

    async def most_asked(self, limit: int) -> list[tuple[str, int]]:
        """The most-asked keys of this hour and the last, most first (none without the table)."""
        store = self._cache.store
        if store is None or limit <= 0:
            return []
        hour = self._clock() // HOUR_MS * HOUR_MS
        try:
            totals = await store.get_counts([tally_key(hour), tally_key(hour - HOUR_MS)])
        except CacheUnavailable as exc:
            self._cache.store_failed(exc)
            return []
        return Counter(totals).most_common(limit)
