"""Read-through caching of one key at a time, in two tiers, with coalesced refreshes and
stale answers when they help.

For one key, the cost in upstream calls is one per freshness window, however many callers ask
at once: callers in one process share one in-flight refresh (single-flight), and across
processes the refresher holds a lease (:mod:`market_proxy.cache.leases`) while the others
wait for its result or, within the stale-while-revalidate window, answer stale at once. A
failed refresh is remembered briefly (its ``Retry-After``, else its kind's default: see
:mod:`market_proxy.exchanges.failures`) so that callers do not repeat it; "no such market"
for ``NEGATIVE_TTL_SECONDS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from market_proxy import errors
from market_proxy.budget import in_background, is_background
from market_proxy.cache.entry import Cached, CachedError, Entry, newest
from market_proxy.cache.leases import Leases
from market_proxy.cache.memory import MemoryTier
from market_proxy.cache.shared import SharedTier
from market_proxy.keys import Key
from market_proxy.observability import count
from market_proxy.settings import DataPolicy

Loader = Callable[[], Awaitable[Any]]
# How long a loaded value is fresh: one policy, or one chosen by what was loaded.
Policy = DataPolicy | Callable[[Any], DataPolicy]

# How long a failed refresh is remembered when the exchange gave no Retry-After.
ERROR_MEMORY_MS = 1000


class ReadThrough:
    def __init__(
        self,
        memory: MemoryTier,
        shared: SharedTier,
        leases: Leases,
        *,
        negative_ttl_s: float,
        refresh_in_background: bool,
        clock: Callable[[], int],
        refresh_ahead_fraction: float = 0.0,
    ) -> None:
        self._memory = memory
        self._shared = shared
        self._leases = leases
        self._negative_ms = round(negative_ttl_s * 1000)
        self._background = refresh_in_background
        self._clock = clock
        self._flights: dict[str, asyncio.Task[Cached]] = {}
        self._ahead_fraction = refresh_ahead_fraction
        self._ahead: dict[str, asyncio.Task[Cached | None]] = {}

    async def get(self, key: Key, policy: Policy, load: Loader) -> Cached:
        """The value for ``key``: from memory, the shared table, or ``load()``, in that order.

        Never serves past freshness unless marked ``stale``: within the policy's
        stale-while-revalidate window while another caller refreshes, and within its
        stale-if-error window when the refresh fails. Raises :class:`errors.ProxyError`
        when the exchange fails and nothing stale may be served; a remembered failure is
        raised again without an upstream call.
        """
        text = key.text
        now = self._clock()
        entry = self._memory.get(text)
        if entry is not None and entry.is_fresh(now):
            count("CacheHitL1")
            self._maybe_ahead(key, policy, load, entry, now)
            return entry.served("l1", now)
        remembered = self._memory.error(text, now)
        if remembered is not None:
            return self._answer_error(remembered, entry, now)

        flight = self._flights.get(text)
        if flight is None:
            flight = asyncio.create_task(self._refresh(text, policy, load, entry))
            self._flights[text] = flight
            flight.add_done_callback(lambda task: self._landed(text, task))
            refreshing_for_others = self._background
        else:
            refreshing_for_others = True
        if (
            refreshing_for_others
            and entry is not None
            and entry.lifetime.may_serve_while_revalidating(now)
        ):
            count("StaleServed")
            return entry.served("stale", now, "revalidating")
        # Shielded: one caller giving up must not cancel the refresh the others wait on.
        return await asyncio.shield(flight)

    async def refresh(
        self, key: Key, policy: Policy, load: Loader, *, unless_fresh_for_s: float
    ) -> Cached | None:
        """Load ``key`` now unless it stays fresh for ``unless_fresh_for_s`` more seconds.

        For warmers: refreshing before expiry means no request ever waits on the exchange.
        Returns None when nothing was needed, or when another container is refreshing it.
        Raises :class:`errors.ProxyError` when the exchange fails.
        """
        text = key.text
        horizon = self._clock() + round(unless_fresh_for_s * 1000)
        stored = await self._shared.get(text)
        entry = newest(self._memory.get(text), stored.entry if stored else None)
        if entry is not None and entry.lifetime.fresh_until > horizon:
            self._memory.put(entry)
            return None
        if not await self._leases.take_unless_fresh(text, horizon):
            return None
        return await self._load(text, policy, load, entry)

    async def close(self) -> None:
        """Let refreshes still running finish; used when a process shuts down."""
        running = [*self._flights.values(), *self._ahead.values()]
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    def _maybe_ahead(self, key: Key, policy: Policy, load: Loader, entry: Entry, now: int) -> None:
        """Refresh a key that is being asked for shortly before it expires, in the
        background, so its askers never find it stale: one caller in the fleet (the refresh
        takes the key's lease unless another container has refreshed it already), as
        background work (it gives way when the exchange's budget is short). A key nobody
        asks for is never refreshed so."""
        life = entry.lifetime
        ahead_ms = round((life.fresh_until - life.fetched_at) * self._ahead_fraction)
        text = key.text
        if ahead_ms <= 0 or life.fresh_until - now > ahead_ms or text in self._ahead:
            return
        if text in self._flights:
            return

        async def ahead() -> Cached | None:
            with in_background():
                return await self.refresh(
                    key, policy, load, unless_fresh_for_s=(life.fresh_until - now) / 1000
                )

        task = asyncio.create_task(ahead())
        self._ahead[text] = task
        count("RefreshAhead")
        task.add_done_callback(lambda done: self._ahead_landed(text, done))

    def _ahead_landed(self, key: str, task: asyncio.Task[Cached | None]) -> None:
        self._ahead.pop(key, None)
        if not task.cancelled():
            task.exception()  # logged where it happened (the gateway); nobody waited on it

    async def _refresh(self, key: str, policy: Policy, load: Loader, known: Entry | None) -> Cached:
        stored = await self._shared.get(key)
        now = self._clock()
        if stored is not None:
            if stored.entry is not None and stored.entry.is_fresh(now):
                return self._from_table(stored.entry, now)
            known = newest(known, stored.entry)
            if stored.error is not None and stored.error.is_active(now):
                self._memory.put_error(key, stored.error)
                return self._answer_error(stored.error, known, now)
        count("CacheMiss")
        verdict = await self._leases.lead_or_wait(key, known)
        now = self._clock()
        known = verdict.known
        if verdict.outcome == "fresh" and known is not None:
            return self._from_table(known, now)
        if verdict.outcome == "failed" and verdict.error is not None:
            self._memory.put_error(key, verdict.error)
            return self._answer_error(verdict.error, known, now)
        if verdict.outcome == "stale" and known is not None:
            count("StaleServed")
            return known.served("stale", now, "revalidating")
        return await self._load(key, policy, load, known)

    async def _load(self, key: str, policy: Policy, load: Loader, known: Entry | None) -> Cached:
        try:
            payload = await load()
        except errors.ProxyError as exc:
            now = self._clock()
            remembered = self._remember(exc, now)
            if isinstance(exc, errors.CircuitOpen | errors.UpstreamBusy):
                # This container's own pause, not news about the exchange: other containers
                # judge for themselves, and only the lease must not hold them up. (Work in
                # the background that gave way to the budget is not remembered at all.)
                if not is_background():
                    self._memory.put_error(key, remembered)
                await self._leases.release(key)
            else:
                self._memory.put_error(key, remembered)
                await self._leases.failed(key, remembered)
            if exc.retryable and known is not None and known.lifetime.may_serve_on_error(now):
                count("StaleServed")
                return known.served("stale", now, exc.code)
            raise
        now = self._clock()
        chosen = policy if isinstance(policy, DataPolicy) else policy(payload)
        entry = Entry.create(key, payload, chosen, now)
        self._memory.put(entry)
        refused = await self._shared.put(entry)
        if refused is not None and not refused.store_wide:
            # The table works but would not take this entry (too large): the lease the put
            # would have dropped must not keep other containers waiting for it.
            await self._leases.release(key)
        return entry.served("upstream", now)

    def _from_table(self, entry: Entry, now: int) -> Cached:
        self._memory.put(entry)
        count("CacheHitL2")
        return entry.served("l2", now)

    def _landed(self, key: str, task: asyncio.Task[Cached]) -> None:
        self._flights.pop(key, None)
        # Retrieved so that a refresh nobody awaited (its callers were answered stale) does
        # not warn at exit; the failure itself was logged where it happened.
        if not task.cancelled():
            task.exception()

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
        if exc.retryable and known is not None and known.lifetime.may_serve_on_error(now):
            count("StaleServed")
            return known.served("stale", now, error.code)
        count("CachedErrorServed")
        raise exc
