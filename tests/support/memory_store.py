"""An in-memory cache store, for the engine's unit tests: the port's promises, no engine.

It keeps the semantics the engine relies on (a newer entry wins a put; a lease is taken only
when none is live and the entry is not fresh past the caller's bound; recording an error
releases the caller's lease; a put drops the lease and the error), and can be made to fail
as a whole table fails. The DynamoDB adapter is held to the same promises against moto and
DynamoDB Local.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from market_proxy.budget import Granted, carried, room_for
from market_proxy.cache.entry import CachedError, Entry, StoredItem
from market_proxy.cache.store import CacheUnavailable


class MemoryStore:
    def __init__(self) -> None:
        self.items: dict[str, StoredItem] = {}
        self.tallies: dict[str, Counter[str]] = {}
        self.budgets: dict[str, tuple[int, float, int, str]] = {}  # window, used, paused, why
        self.calls: Counter[str] = Counter()
        self.failing: str | None = None  # the reason every call fails with, when set

    def _enter(self, operation: str) -> None:
        self.calls[operation] += 1
        if self.failing is not None:
            raise CacheUnavailable(operation, self.failing)

    async def get(self, key: str, *, consistent: bool = False) -> StoredItem | None:
        self._enter("get")
        return self.items.get(key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, StoredItem]:
        self._enter("get_many")
        return {key: self.items[key] for key in keys if key in self.items}

    async def put(self, entry: Entry) -> None:
        self._enter("put")
        self._keep(entry)

    async def put_many(self, entries: Sequence[Entry]) -> None:
        self._enter("put_many")
        for entry in entries:
            self._keep(entry)

    def _keep(self, entry: Entry) -> None:
        held = self.items.get(entry.key)
        kept = held.entry if held is not None else None
        if kept is not None and kept.lifetime.fetched_at >= entry.lifetime.fetched_at:
            return
        self.items[entry.key] = StoredItem(entry=entry)

    async def acquire_lease(
        self, key: str, owner: str, until_ms: int, now_ms: int, *, fresh_before: int | None = None
    ) -> tuple[bool, StoredItem | None]:
        self._enter("acquire_lease")
        held = self.items.get(key, StoredItem())
        bound = now_ms if fresh_before is None else fresh_before
        fresh = held.entry is not None and held.entry.lifetime.fresh_until > bound
        if held.lease_until >= now_ms or fresh:
            return False, held
        self.items[key] = replace(held, lease_owner=owner, lease_until=until_ms)
        return True, None

    async def record_error(self, key: str, owner: str, error: CachedError) -> None:
        self._enter("record_error")
        held = self.items.get(key, StoredItem())
        if held.lease_owner not in (None, owner):
            return
        self.items[key] = replace(held, error=error, lease_owner=None, lease_until=0)

    async def release_lease(self, key: str, owner: str) -> None:
        self._enter("release_lease")
        held = self.items.get(key)
        if held is not None and held.lease_owner == owner:
            self.items[key] = replace(held, lease_owner=None, lease_until=0)

    async def add_counts(self, key: str, counts: dict[str, int], expires_at_s: int) -> None:
        self._enter("add_counts")
        self.tallies.setdefault(key, Counter()).update(counts)

    async def get_counts(self, keys: Sequence[str]) -> dict[str, int]:
        self._enter("get_counts")
        total: Counter[str] = Counter()
        for key in keys:
            total.update(self.tallies.get(key, Counter()))
        return dict(total)

    async def take_units(
        self, key: str, window: int, units: float, ceiling: float, now_ms: int, *, least: float
    ) -> Granted:
        self._enter("take_units")
        held_window, used, paused, reason = self.budgets.get(key, (-1, 0.0, 0, ""))
        if paused > now_ms:
            return Granted(0.0, paused, reason)
        window = max(window, held_window)
        if held_window != window:
            used = carried(used, held_window, window, ceiling)
        granted = room_for(used, units, least, ceiling)
        self.budgets[key] = (window, used + granted, paused, reason)
        return Granted(granted, left=max(0.0, ceiling - used - granted))

    async def pause(self, key: str, until_ms: int, reason: str) -> None:
        self._enter("pause")
        window, used, paused, _ = self.budgets.get(key, (-1, 0.0, 0, ""))
        if until_ms > paused:
            self.budgets[key] = (window, used, until_ms, reason)

    async def ping(self) -> None:
        self._enter("ping")

    def disconnect(self) -> None:
        self.calls["disconnect"] += 1
