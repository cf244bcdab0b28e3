"""The per-container memory tier (L1): least recently used out first, bounded in bytes.

It keeps entries past their freshness, so that a stale value is at hand for
stale-while-revalidate and stale-if-error; the engine decides what may be served.
"""

from __future__ import annotations

from collections import OrderedDict

from market_proxy.cache.entry import CachedError, Entry

# Python objects take several times their JSON size; this keeps the byte bound honest.
_OBJECT_OVERHEAD = 4


class MemoryTier:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._errors: OrderedDict[str, CachedError] = OrderedDict()
        self._bytes = 0

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, entry: Entry) -> None:
        """Keep ``entry`` unless an entry fetched later is already held for its key."""
        cost = entry.size * _OBJECT_OVERHEAD
        if cost > self._max_bytes:
            return
        old = self._entries.pop(entry.key, None)
        if old is not None:
            self._bytes -= old.size * _OBJECT_OVERHEAD
            if old.lifetime.fetched_at > entry.lifetime.fetched_at:
                entry, cost = old, old.size * _OBJECT_OVERHEAD
        self._entries[entry.key] = entry
        self._bytes += cost
        self._errors.pop(entry.key, None)
        while self._bytes > self._max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.size * _OBJECT_OVERHEAD

    def error(self, key: str, now_ms: int) -> CachedError | None:
        error = self._errors.get(key)
        if error is not None and not error.is_active(now_ms):
            del self._errors[key]
            return None
        return error

    def put_error(self, key: str, error: CachedError) -> None:
        self._errors[key] = error
        self._errors.move_to_end(key)
        while len(self._errors) > 4096:
            self._errors.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
        self._errors.clear()
        self._bytes = 0

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
