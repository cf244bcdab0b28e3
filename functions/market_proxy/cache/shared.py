"""The shared table as the rest of the service uses it: an optimisation that never fails a
request.

Every failure of the table is logged and counted once, here, and the caller carries on as
if the table were empty. When the table fails as a whole (unreachable, throttled, access
denied), every user of it (cache reads and writes, leases, the demand tally, the budget)
leaves it alone for ``CACHE_STORE_BACKOFF_SECONDS``, so that no other request pays for the
same outage: they share one :class:`Outage`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from market_proxy.cache.entry import Cached, CachedError, Entry, StoredItem
from market_proxy.cache.memory import MemoryTier
from market_proxy.cache.store import CacheStore, CacheUnavailable
from market_proxy.observability import count, logger


class Outage:
    """Whether the table is resting after failing as a whole, for everyone who uses it."""

    def __init__(self, backoff_s: float, clock: Callable[[], int]) -> None:
        self._backoff_ms = round(backoff_s * 1000)
        self._clock = clock
        self._resting_until = 0

    @property
    def resting(self) -> bool:
        return self._clock() < self._resting_until

    def failed(self, exc: CacheUnavailable) -> None:
        """Log and count a failure of the table; one of the whole table rests it."""
        rest_s = self._backoff_ms / 1000 if exc.store_wide else 0.0
        if rest_s:
            self._resting_until = self._clock() + self._backoff_ms
        logger.warning(
            "cache store failed; carrying on without it",
            extra={"operation": exc.operation, "reason": exc.reason, "rest_s": rest_s},
        )
        count("CacheStoreErrors")


class SharedTier:
    """The cache port with failures absorbed: a resting or failing table reads as empty,
    takes no writes, and lets every caller lead its own refresh (nobody to coordinate with).
    """

    def __init__(self, store: CacheStore | None, outage: Outage) -> None:
        self._store = store
        self.outage = outage

    @property
    def usable(self) -> CacheStore | None:
        """The store, or None while there is none or it rests."""
        if self._store is None or self.outage.resting:
            return None
        return self._store

    async def get(self, key: str, *, consistent: bool = False) -> StoredItem | None:
        store = self.usable
        if store is None:
            return None
        try:
            return await store.get(key, consistent=consistent)
        except CacheUnavailable as exc:
            self.outage.failed(exc)
            return None

    async def get_many(self, keys: Sequence[str]) -> dict[str, StoredItem]:
        store = self.usable
        if store is None or not keys:
            return {}
        try:
            return await store.get_many(keys)
        except CacheUnavailable as exc:
            self.outage.failed(exc)
            return {}

    async def put(self, entry: Entry) -> CacheUnavailable | None:
        """Write ``entry``; the store's refusal, logged and counted, is returned."""
        store = self.usable
        if store is None:
            return None
        try:
            await store.put(entry)
        except CacheUnavailable as exc:
            self.outage.failed(exc)
            return exc
        return None

    async def put_many(self, entries: Sequence[Entry]) -> None:
        store = self.usable
        if store is None or not entries:
            return
        try:
            await store.put_many(entries)
        except CacheUnavailable as exc:
            self.outage.failed(exc)

    async def acquire_lease(
        self, key: str, owner: str, until_ms: int, now_ms: int, *, fresh_before: int | None = None
    ) -> tuple[bool, StoredItem | None]:
        """As the port's; taken (with nothing known) when the table rests or fails."""
        store = self.usable
        if store is None:
            return True, None
        try:
            return await store.acquire_lease(
                key, owner, until_ms, now_ms, fresh_before=fresh_before
            )
        except CacheUnavailable as exc:
            self.outage.failed(exc)
            return True, None

    async def release_lease(self, key: str, owner: str) -> None:
        store = self.usable
        if store is None:
            return
        try:
            await store.release_lease(key, owner)
        except CacheUnavailable as exc:
            self.outage.failed(exc)

    async def record_error(self, key: str, owner: str, error: CachedError) -> None:
        store = self.usable
        if store is None:
            return
        try:
            await store.record_error(key, owner, error)
        except CacheUnavailable as exc:
            self.outage.failed(exc)

    async def check(self) -> str | None:
        """Why the table does not answer now, or None when it does (health checks)."""
        if self._store is None:
            return "disabled"
        try:
            await self._store.ping()
        except CacheUnavailable as exc:
            return exc.reason
        return None

    def disconnect(self) -> None:
        if self._store is not None:
            self._store.disconnect()


class Tiers:
    """Memory (L1) in front of the shared table (L2), for callers that judge freshness
    themselves (candle buckets): reads and writes of both, without any policy."""

    def __init__(self, memory: MemoryTier, shared: SharedTier, clock: Callable[[], int]) -> None:
        self.memory = memory
        self.shared = shared
        self._clock = clock

    async def peek_many(self, keys: Sequence[str]) -> dict[str, Cached]:
        """What is held for ``keys``, fresh or not, from memory and then the table; the
        ``source`` of each says which tier answered."""
        now = self._clock()
        found: dict[str, Cached] = {}
        missing = []
        for key in keys:
            entry = self.memory.get(key)
            if entry is not None:
                found[key] = entry.served("l1", now)
            else:
                missing.append(key)
        for key, item in (await self.shared.get_many(missing)).items():
            if item.entry is not None:
                self.memory.put(item.entry)
                found[key] = item.entry.served("l2", now)
        return found

    async def put_many(self, entries: Sequence[Entry]) -> None:
        """Keep ``entries`` in memory and write them to the table (failures absorbed)."""
        for entry in entries:
            self.memory.put(entry)
        await self.shared.put_many(entries)
