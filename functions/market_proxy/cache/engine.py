"""Read-through caching with two tiers, coalesced refreshes and stale answers when they help.

For one key, the cost in upstream calls is one per freshness window, however many callers ask
at once: callers in one process share one in-flight refresh (single-flight), and across
processes the refresher holds a short lease taken with a conditional write while the others
wait for its result or, within the stale-while-revalidate window, answer stale at once.

The shared store is an optimisation. When it fails, the failure is logged and counted and the
request goes upstream as if the store were empty. When it fails as a whole (unreachable,
throttled, access denied), the engine leaves it alone for ``store_backoff_s`` so that no
other request pays for the same outage.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from market_proxy import errors
from market_proxy.cache.entry import Cached, CachedError, Entry, StoredItem
from market_proxy.cache.memory import MemoryTier
from market_proxy.cache.store import CacheStore, CacheUnavailable
from market_proxy.observability import count, logger
from market_proxy.settings import DataPolicy

Loader = Callable[[], Awaitable[Any]]

# How long a failed refresh is remembered when the exchange gave no Retry-After.
ERROR_MEMORY_MS = 1000
_POLL_START_S = 0.02
_POLL_MAX_S = 0.2


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class CacheEngine:
    def __init__(
        self,
        store: CacheStore | None,
        memory: MemoryTier,
        *,
        lease_s: float,
        lease_wait_s: float,
        negative_ttl_s: float,
        refresh_in_background: bool = False,
        store_backoff_s: float = 0.0,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._shared = store
        self._store_backoff_ms = round(store_backoff_s * 1000)
        self._store_resting_until = 0
        self.memory = memory
        self._lease_ms = round(lease_s * 1000)
        self._lease_wait_s = lease_wait_s
        self._negative_ms = round(negative_ttl_s * 1000)
        self._background = refresh_in_background
        self._clock = clock
        self._owner = uuid.uuid4().hex
        self._flights: dict[str, asyncio.Task[Cached]] = {}

    def renew_identity(self) -> None:
        """Take a new lease-owner id: containers restored from one SnapStart snapshot would
        otherwise share the snapshot's, and each would think it holds the others' leases."""
        self._owner = uuid.uuid4().hex

    async def get(self, key: str, policy: DataPolicy, load: Loader) -> Cached:
        """The value for ``key``: from memory, the shared store, or ``load()``, in that order.

        Never serves past freshness unless marked ``stale``: within the policy's
        stale-while-revalidate window while another caller refreshes, and within its
        stale-if-error window when the refresh fails. Raises :class:`errors.ProxyError`
        when the exchange fails and nothing stale may be served; a remembered "no such
        market" is raised again without an upstream call.
        """
        now = self._clock()
        entry = self.memory.get(key)
        if entry is not None and entry.is_fresh(now):
            count("CacheHitL1")
            return entry.served("l1", now)
        remembered = self.memory.error(key, now)
        if remembered is not None:
            return self._answer_error(remembered, entry, now)

        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.create_task(self._refresh(key, policy, load, entry))
            self._flights[key] = flight
            flight.add_done_callback(lambda task: self._landed(key, task))
            refreshing_for_others = self._background
        else:
            refreshing_for_others = True
        if refreshing_for_others and entry is not None and entry.may_serve_while_revalidating(now):
            count("StaleServed")
            return entry.served("stale", now, "revalidating")
        # Shielded: one caller giving up must not cancel the refresh the others wait on.
        return await asyncio.shield(flight)

    async def _refresh(
        self, key: str, policy: DataPolicy, load: Loader, known: Entry | None
    ) -> Cached:
        stored = await self._read(key)
        now = self._clock()
        if stored is not None:
            if stored.entry is not None and stored.entry.is_fresh(now):
                self.memory.put(stored.entry)
                count("CacheHitL2")
                return stored.entry.served("l2", now)
            known = _newest(known, stored.entry)
            if stored.error is not None and stored.error.is_active(now):
                self.memory.put_error(key, stored.error)
                return self._answer_error(stored.error, known, now)
        count("CacheMiss")

        if self.store is not None:
            outcome = await self._wait_or_lead(key, known)
            if isinstance(outcome, Cached):
                return outcome
            known = _newest(known, outcome)
        return await self._load(key, policy, load, known)

    async def _wait_or_lead(self, key: str, known: Entry | None) -> Cached | Entry | None:
        """Take the lease, or wait for its holder's result.

        Returns an answer to give, or, when this caller should go upstream itself, the newest
        entry seen, for use as a stale fallback. Waiting polls with reads; a write (the lease
        attempt) is repeated only once the holder's lease has lapsed.
        """
        deadline = time.monotonic() + self._lease_wait_s
        delay = _POLL_START_S
        try_lease = True
        while True:
            now = self._clock()
            if try_lease:
                taken, current = await self._acquire(key, now)
                if taken:
                    return known
            else:
                current = await self._read(key, consistent=True)
            now = self._clock()
            if current is not None:
                known = _newest(known, current.entry)
                if current.entry is not None and current.entry.is_fresh(now):
                    self.memory.put(current.entry)
                    count("CacheHitL2")
                    return current.entry.served("l2", now)
                if current.error is not None and current.error.is_active(now):
                    self.memory.put_error(key, current.error)
                    return self._answer_error(current.error, known, now)
            if known is not None and known.may_serve_while_revalidating(now):
                count("StaleServed")
                return known.served("stale", now, "revalidating")
            if time.monotonic() >= deadline:
                # The holder is slow or gone; answering beats waiting longer.
                count("LeaseWaitExpired")
                return known
            try_lease = current is None or not current.lease_active(now)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)

    async def _load(
        self, key: str, policy: DataPolicy, load: Loader, known: Entry | None
    ) -> Cached:
        try:
            payload = await load()
        except errors.ProxyError as exc:
            now = self._clock()
            remembered = self._remember(exc, now)
            self.memory.put_error(key, remembered)
            if isinstance(exc, errors.CircuitOpen):
                # This container's own pause, not news about the exchange: other containers
                # judge for themselves, and only the lease must not hold them up.
                await self._release(key)
            else:
                await self._record_error(key, remembered)
            if exc.retryable and known is not None and known.may_serve_on_error(now):
                count("StaleServed")
                return known.served("stale", now, exc.code)
            raise
        now = self._clock()
        entry = Entry.create(key, payload, policy, now)
        self.memory.put(entry)
        refused = await self._put(entry)
        if refused is not None and not refused.store_wide:
            # The table works but would not take this entry (too large): the lease the put
            # would have dropped must not keep other containers waiting for it.
            await self._release(key)
        return entry.served("upstream", now)

    async def refresh(
        self, key: str, policy: DataPolicy, load: Loader, *, unless_fresh_for_s: float
    ) -> Cached | None:
        """Load ``key`` now unless it stays fresh for ``unless_fresh_for_s`` more seconds.

        For warmers: refreshing before expiry means no request ever waits on the exchange.
        Returns None when nothing was needed, or when another container is refreshing it.
        Raises :class:`errors.ProxyError` when the exchange fails.
        """
        now = self._clock()
        horizon = now + round(unless_fresh_for_s * 1000)
        stored = await self._read(key)
        entry = _newest(self.memory.get(key), stored.entry if stored else None)
        if entry is not None and entry.fresh_until > horizon:
            self.memory.put(entry)
            return None
        store = self.store
        if store is not None:
            try:
                taken, _ = await store.acquire_lease(
                    key, self._owner, now + self._lease_ms, now, fresh_before=horizon
                )
            except CacheUnavailable as exc:
                self.store_failed(exc)
                taken = True
            if not taken:
                return None
        return await self._load(key, policy, load, entry)

    # -- multi-key access, for callers that manage their own keys (candle buckets) --------

    async def lead_or_wait(self, key: str, known: Entry | None) -> Cached | None:
        """Coordinate a refresh of ``key`` with other containers: take its lease, or wait a
        bounded time (``LEASE_WAIT_SECONDS``) for its holder's result.

        Returns the fresh entry another caller wrote meanwhile, or None when this caller
        should refresh: it holds the lease (the next write of ``key`` drops it, or
        :meth:`release`), or waited long enough, or the store is resting.
        """
        if self.store is None:
            return None
        outcome = await self._wait_or_lead(key, known)
        if isinstance(outcome, Cached) and outcome.entry.is_fresh(self._clock()):
            return outcome
        return None

    async def release(self, key: str) -> None:
        """Give up this caller's lease on ``key`` (its refresh failed); never raises."""
        await self._release(key)

    async def peek_many(self, keys: Sequence[str]) -> dict[str, Cached]:
        """What is held for ``keys``, fresh or not, from memory and then the shared store.

        The caller judges freshness; ``source`` says which tier answered.
        """
        now = self._clock()
        found: dict[str, Cached] = {}
        missing = []
        for key in keys:
            entry = self.memory.get(key)
            if entry is not None:
                found[key] = entry.served("l1", now)
            else:
                missing.append(key)
        store = self.store
        if missing and store is not None:
            try:
                stored = await store.get_many(missing)
            except CacheUnavailable as exc:
                self.store_failed(exc)
                stored = {}
            for key, item in stored.items():
                if item.entry is not None:
                    self.memory.put(item.entry)
                    found[key] = item.entry.served("l2", now)
        return found

    async def put(self, entry: Entry) -> None:
        """Write ``entry`` to the shared store; a failure is logged, never raised."""
        await self._put(entry)

    async def put_many(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            self.memory.put(entry)
        store = self.store
        if store is None or not entries:
            return
        try:
            await store.put_many(entries)
        except CacheUnavailable as exc:
            self.store_failed(exc)

    async def close(self) -> None:
        """Let refreshes still running finish; used when a process shuts down."""
        if self._flights:
            await asyncio.gather(*self._flights.values(), return_exceptions=True)

    # -- helpers -------------------------------------------------------------------------

    def _landed(self, key: str, task: asyncio.Task[Cached]) -> None:
        self._flights.pop(key, None)
        # Retrieved so that a refresh nobody awaited (its callers were answered stale) does
        # not warn at exit; the failure itself was logged where it happened.
        if not task.cancelled():
            task.exception()

    async def _read(self, key: str, *, consistent: bool = False) -> StoredItem | None:
        store = self.store
        if store is None:
            return None
        try:
            return await store.get(key, consistent=consistent)
        except CacheUnavailable as exc:
            self.store_failed(exc)
            return None

    async def _acquire(self, key: str, now: int) -> tuple[bool, StoredItem | None]:
        store = self.store
        if store is None:
            return True, None  # resting: nobody to coordinate with, go upstream
        try:
            return await store.acquire_lease(key, self._owner, now + self._lease_ms, now)
        except CacheUnavailable as exc:
            self.store_failed(exc)
            return True, None

    async def _put(self, entry: Entry) -> CacheUnavailable | None:
        """Write ``entry``; the store's refusal, logged and counted, is returned."""
        store = self.store
        if store is None:
            return None
        try:
            await store.put(entry)
        except CacheUnavailable as exc:
            self.store_failed(exc)
            return exc
        return None

    async def _release(self, key: str) -> None:
        store = self.store
        if store is None:
            return
        try:
            await store.release_lease(key, self._owner)
        except CacheUnavailable as exc:
            self.store_failed(exc)

    async def _record_error(self, key: str, error: CachedError) -> None:
        store = self.store
        if store is None:
            return
        try:
            await store.record_error(key, self._owner, error)
        except CacheUnavailable as exc:
            self.store_failed(exc)

    def _remember(self, exc: errors.ProxyError, now: int) -> CachedError:
        if isinstance(exc, errors.UnknownMarket):
            span = self._negative_ms
        else:
            span = round(exc.retry_after * 1000) if exc.retry_after else ERROR_MEMORY_MS
        return CachedError(
            code=exc.code, detail=exc.detail, until=now + span, retry_after=exc.retry_after
        )

    def _answer_error(self, error: CachedError, known: Entry | None, now: int) -> Cached:
        exc = errors.rebuild(error.code, error.detail, retry_after=error.retry_after)
        if exc.retryable and known is not None and known.may_serve_on_error(now):
            count("StaleServed")
            return known.served("stale", now, error.code)
        count("CachedErrorServed")
        raise exc

    @property
    def store(self) -> CacheStore | None:
        """The shared store, or None while it rests after failing as a whole: for callers
        that use the table beside the engine (the demand tally)."""
        if self._shared is None or self._clock() < self._store_resting_until:
            return None
        return self._shared

    def store_failed(self, exc: CacheUnavailable) -> None:
        """Log and count a failure of the shared store; one of the whole table rests it."""
        rest_s = self._store_backoff_ms / 1000 if exc.store_wide else 0.0
        if rest_s:
            self._store_resting_until = self._clock() + self._store_backoff_ms
        logger.warning(
            "cache store failed; carrying on without it",
            extra={"operation": exc.operation, "reason": exc.reason, "rest_s": rest_s},
        )
        count("CacheStoreErrors")


def _newest(a: Entry | None, b: Entry | None) -> Entry | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.fetched_at >= b.fetched_at else b
