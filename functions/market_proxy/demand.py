"""What clients ask for, tallied cheaply, so the warmer can keep the most-asked keys warm.

Each container counts in memory and adds its counts to an hourly tally in the table at most
once a minute: one write per container per minute, never one per request. The tally shares
the cache's :class:`~market_proxy.cache.shared.Outage`: while the table rests after a
failure, the tally waits too instead of making a request pay for another failing call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from market_proxy.cache.shared import Outage
from market_proxy.cache.store import CacheUnavailable
from market_proxy.keys import HOUR_MS, DemandKey, TallyKey, parse_demand


class TallyStore(Protocol):
    """The demand tally's port (the cache table's adapter implements it)."""

    async def add_counts(self, key: str, counts: dict[str, int], expires_at_s: int) -> None:
        """Add ``counts`` to the tallies kept under ``key``."""
        ...

    async def get_counts(self, keys: Sequence[str]) -> dict[str, int]:
        """The tallies under ``keys``, summed."""
        ...


class DemandLog:
    def __init__(
        self,
        store: TallyStore | None,
        outage: Outage,
        clock: Callable[[], int],
        *,
        flush_every_s: float = 60.0,
        keep_top: int = 100,
    ) -> None:
        self._store = store
        self._outage = outage
        self._clock = clock
        self._every_ms = round(flush_every_s * 1000)
        self._keep_top = keep_top
        self._counts: Counter[str] = Counter()
        self._last_flush = clock()

    def note(self, key: DemandKey) -> None:
        self._counts[key.text] += 1

    async def maybe_flush(self) -> None:
        """Add this container's counts to the shared tally if a minute has passed (one
        write; none while the table is resting, and then the counts wait for the next)."""
        now = self._clock()
        store = self._usable()
        if store is None or not self._counts or now - self._last_flush < self._every_ms:
            return
        counts = dict(self._counts.most_common(self._keep_top))
        self._counts.clear()
        self._last_flush = now
        tally = TallyKey.of(now)
        try:
            await store.add_counts(tally.text, counts, (tally.hour_start_ms + 3 * HOUR_MS) // 1000)
        except CacheUnavailable as exc:
            self._outage.failed(exc)

    async def most_asked(self, limit: int) -> list[tuple[DemandKey, int]]:
        """The most-asked keys of this hour and the last, most first (none without the table)."""
        store = self._usable()
        if store is None or limit <= 0:
            return []
        tally = TallyKey.of(self._clock())
        try:
            totals = await store.get_counts([tally.text, tally.previous().text])
        except CacheUnavailable as exc:
            self._outage.failed(exc)
            return []
        asked = []
        for text, times in Counter(totals).most_common():
            key = parse_demand(text)
            if key is not None:
                asked.append((key, times))
        return asked[:limit]

    def _usable(self) -> TallyStore | None:
        return None if self._outage.resting else self._store
