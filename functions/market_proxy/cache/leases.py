"""Refresh leases across containers: who refreshes a key, and what the others wait for.

A lease is a short claim on a key taken with a conditional write, so that of all the
containers missing the key at once one calls upstream while the others poll the table for
its result. A crashed holder blocks nobody past its lease; a waiter never waits longer than
``LEASE_WAIT_SECONDS`` and then refreshes itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from market_proxy.cache.entry import CachedError, Entry, newest
from market_proxy.cache.shared import SharedTier
from market_proxy.observability import count

_POLL_START_S = 0.02
_POLL_MAX_S = 0.2

Outcome = Literal["lead", "fresh", "failed", "stale"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What coordinating on a key came to.

    ``lead``: this caller refreshes (it holds the lease, waited long enough, or there is
    nobody to coordinate with). ``fresh``: another caller wrote a fresh entry (``known``).
    ``failed``: another caller's refresh failed just now (``error``). ``stale``: ``known``
    may be served stale while the holder refreshes.
    """

    outcome: Outcome
    known: Entry | None = None
    error: CachedError | None = None


class Leases:
    def __init__(
        self,
        shared: SharedTier,
        *,
        lease_s: float,
        wait_s: float,
        clock: Callable[[], int],
    ) -> None:
        self._shared = shared
        self._lease_ms = round(lease_s * 1000)
        self._wait_s = wait_s
        self._clock = clock
        self.owner = uuid.uuid4().hex

    def renew_identity(self) -> None:
        """Take a new owner id: containers restored from one SnapStart snapshot would
        otherwise share the snapshot's, and each would think it holds the others' leases."""
        self.owner = uuid.uuid4().hex

    async def lead_or_wait(self, key: str, known: Entry | None) -> Verdict:
        """Take the lease on ``key``, or wait a bounded time for its holder's result.

        Waiting polls with reads; the lease is tried again (a write) only once the holder's
        lease has lapsed. ``known`` is the newest entry the caller holds; the verdict's is
        the newest seen.
        """
        if self._shared.usable is None:
            return Verdict("lead", known)
        deadline = time.monotonic() + self._wait_s
        delay = _POLL_START_S
        try_lease = True
        while True:
            now = self._clock()
            if try_lease:
                taken, current = await self._shared.acquire_lease(
                    key, self.owner, now + self._lease_ms, now
                )
                if taken:
                    return Verdict("lead", known)
            else:
                current = await self._shared.get(key, consistent=True)
            now = self._clock()
            if current is not None:
                known = newest(known, current.entry)
                if current.entry is not None and current.entry.is_fresh(now):
                    return Verdict("fresh", current.entry)
                if current.error is not None and current.error.is_active(now):
                    return Verdict("failed", known, current.error)
            if known is not None and known.lifetime.may_serve_while_revalidating(now):
                return Verdict("stale", known)
            if time.monotonic() >= deadline:
                # The holder is slow or gone; answering beats waiting longer.
                count("LeaseWaitExpired")
                return Verdict("lead", known)
            try_lease = current is None or not current.lease_active(now)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _POLL_MAX_S)

    async def take_unless_fresh(self, key: str, fresh_past: int) -> bool:
        """Take the lease unless another caller holds it or the stored entry stays fresh
        past ``fresh_past`` (refreshing ahead of expiry); True with nobody to coordinate."""
        now = self._clock()
        taken, _ = await self._shared.acquire_lease(
            key, self.owner, now + self._lease_ms, now, fresh_before=fresh_past
        )
        return taken

    async def release(self, key: str) -> None:
        """Give up this caller's lease on ``key``; never raises."""
        await self._shared.release_lease(key, self.owner)

    async def failed(self, key: str, error: CachedError) -> None:
        """Release the lease, leaving word of the failure for those waiting on it."""
        await self._shared.record_error(key, self.owner, error)
