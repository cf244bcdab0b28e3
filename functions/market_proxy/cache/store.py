"""The port of the shared cache tier (L2), and its failure. The engine speaks only to this
protocol (through :class:`market_proxy.cache.shared.SharedTier`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

from market_proxy.cache.entry import CachedError, Entry, StoredItem

# Set while a request works on several things at once (a batch, a comparison).
_fanning_out: ContextVar[bool] = ContextVar("fanning_out", default=False)


@contextlib.contextmanager
def fanning_out() -> Iterator[None]:
    """Within this block (and the tasks it starts) the request works on several keys at
    once: a store whose calls block (calls on the event loop's thread) should let them
    overlap instead."""
    token = _fanning_out.set(True)
    try:
        yield
    finally:
        _fanning_out.reset(token)


def fanned_out() -> bool:
    return _fanning_out.get()


class CacheUnavailable(Exception):
    """The shared store failed. The cache is an optimisation: callers carry on without it.

    ``store_wide`` says whether the store as a whole is failing (unreachable, throttled,
    access denied), so that callers stop asking it for a while, or only this request was
    refused (an item over the size limit) and the next one may well succeed.
    """

    def __init__(self, operation: str, reason: str, *, store_wide: bool = True) -> None:
        super().__init__(f"{operation}: {reason}")
        self.operation = operation
        self.reason = reason
        self.store_wide = store_wide


class ConditionFailed(Exception):
    """A conditional write whose condition did not hold; ``item`` is the item as it was."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item


class CacheStore(Protocol):
    async def get(self, key: str, *, consistent: bool = False) -> StoredItem | None:
        """The item for ``key``, or None when there is none."""
        ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, StoredItem]:
        """Items for those of ``keys`` that exist, in as few round trips as the store allows."""
        ...

    async def put(self, entry: Entry) -> None:
        """Store ``entry``, dropping any lease or error; a newer stored entry is kept."""
        ...

    async def put_many(self, entries: Sequence[Entry]) -> None:
        """Store several entries in as few round trips as the store allows."""
        ...

    async def acquire_lease(
        self, key: str, owner: str, until_ms: int, now_ms: int, *, fresh_before: int | None = None
    ) -> tuple[bool, StoredItem | None]:
        """Take the refresh lease on ``key`` unless it is held, or the entry stays fresh past
        ``fresh_before`` (default: now).

        Returns whether the lease was taken and, when it was not, the item as it stands.
        """
        ...

    async def record_error(self, key: str, owner: str, error: CachedError) -> None:
        """Remember a failed refresh and release ``owner``'s lease."""
        ...

    async def release_lease(self, key: str, owner: str) -> None:
        """Release ``owner``'s lease on ``key``, if it still holds it."""
        ...

    async def ping(self) -> None:
        """Raise :class:`CacheUnavailable` unless the store answers."""
        ...

    def disconnect(self) -> None:
        """Close open connections (before a SnapStart snapshot, where a socket would be dead
        on restore); the next call opens new ones."""
        ...
