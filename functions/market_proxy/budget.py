"""One upstream budget per exchange for the whole fleet, and pauses every container honours.

An exchange limits what one address or account may ask, however many containers ask. Here
every container takes its upstream calls out of one budget per exchange kept in the table:
a window counter (one item per exchange, one window a second) from which a container takes
a *lease* of several units with one conditional write, and spends it locally, so the table
is written once per lease, not once per call. A request costlier than what a window holds
overdraws it, and the next windows start with the debt (:func:`carried`): a bucket's
average rate, with a counter's one item. Units are ccxt's own costs (its endpoint
weights), so an exchange that limits by weight is budgeted by weight; ccxt's per-client
limiter stays on under it.

Bans and rate limits are shared the same way: a 418, a 429 with ``Retry-After`` or a
lockout writes a "paused until" onto the exchange's item, which every container learns the
next time it takes a lease. So a container may go on calling a paused exchange for at most
what is left of its lease (a fraction of one window's budget) before it knows.

Requests a client waits on go first: background work (warming, refreshing ahead) may use
only the budget's unreserved part, is refused rather than kept waiting, and steps aside
altogether for the rest of the window and the next once a request a client waits on has
found the budget spent in this container. If the table
fails, each container falls back to a conservative local share of the budget, logged and
counted; nothing waits on the table.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol

from market_proxy import errors
from market_proxy.cache.shared import Outage
from market_proxy.cache.store import CacheUnavailable
from market_proxy.clock import now_ms
from market_proxy.keys import BudgetKey
from market_proxy.limits import WINDOW_MS, Limit
from market_proxy.observability import count, latency, logger

# Requests arrive at the exchange a little after they leave: none leaves in the last part
# of a window, so that what leaves in it arrives in the exchange's same second.
GUARD_MS = 50

# Whether the current task's upstream calls are waited on by a client (the default) or are
# background work that must give way.
_background: ContextVar[bool] = ContextVar("background_upstream", default=False)


@contextlib.contextmanager
def in_background() -> Iterator[None]:
    """Upstream calls made within this block (and tasks it starts) are background work."""
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


def is_background() -> bool:
    """Whether the current task's upstream calls are background work."""
    return _background.get()


@dataclass(frozen=True, slots=True)
class Granted:
    """What the table said to a lease request: the units granted (0: none left in the
    window), and any pause in force."""

    units: float
    paused_until: int = 0
    pause_reason: str = ""
    left: float | None = None  # the window's units the fleet has not taken yet, if known


def carried(used: float, held: int, window: int, per_window: float) -> float:
    """What window ``held`` (which used ``used``) still owes to ``window``, a later one
    (windows are named by their start, epoch ms).

    The budget refills ``per_window`` units a window, like a bucket: a request costlier
    than one window (Binance's every-ticker call, 40 units of a 20-unit second) or than the
    whole window of a slow exchange (one request every three seconds) overdraws its window,
    and the windows after it start with the debt, so the exchange's rate holds on average.
    """
    if held < 0 or window <= held:
        return 0.0
    return max(0.0, used - per_window * (window - held) / WINDOW_MS)


def room_for(used: float, units: float, least: float, ceiling: float) -> float:
    """The units a window holding ``used`` (out of ``ceiling``) grants to a lease of up to
    ``units``: what is left, up to ``units``, but at least ``least`` (the request's own
    cost) while anything is left at all; none once the window is spent. A request costlier
    than what is left overdraws the window, and the windows after it pay (:func:`carried`)."""
    if used >= ceiling:
        return 0.0
    return max(least, min(units, ceiling - used))


class BudgetStore(Protocol):
    """The budget's port (the cache table's adapter implements it)."""

    async def take_units(
        self, key: str, window: int, units: float, ceiling: float, now_ms: int, *, least: float
    ) -> Granted:
        """Add up to ``units`` (at least ``least``, else none) to the window's use, as
        :func:`room_for` allows, unless the exchange is paused; what was granted, and the
        pause in force. A window opened after one that was overdrawn starts with what is
        still owed (:func:`carried`)."""
        ...

    async def pause(self, key: str, until_ms: int, reason: str) -> None:
        """Pause calls to the exchange until ``until_ms`` (a later pause is kept)."""
        ...


@dataclass
class _Account:
    """What this container holds of one exchange's budget."""

    window: int = -1
    units: float = 0.0
    spent: float = 0.0  # in the current window, by this container
    paused_until: int = 0
    pause_reason: str = ""
    # Until when (wall ms) background work gives way at once: a request a client waits on
    # found the budget spent here lately.
    pressed_until: int = 0
    # The fallback's own bucket while the table fails: units, and when it was last filled.
    local_units: float = 0.0
    local_at: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Budget:
    def __init__(
        self,
        store: BudgetStore | None,
        outage: Outage,
        limits: Callable[[str], Limit],
        *,
        fallback_share: float,
        clock: Callable[[], int],
        wall: Callable[[], int] = now_ms,
        geo_block_s: float = 3600.0,
    ) -> None:
        self._wall = wall
        self._geo_block_ms = round(geo_block_s * 1000)
        self._store = store
        self._outage = outage
        self._limits = limits
        self._fallback_share = fallback_share
        self._clock = clock
        self._accounts: dict[str, _Account] = {}

    async def spend(self, exchange: str, cost: float, *, deadline_ms: int) -> None:
        """Take ``cost`` units of ``exchange``'s budget for one request, waiting for the next
        window if need be, but never past ``deadline_ms`` (wall-clock epoch ms: windows are
        real seconds, whatever clock the service's data is judged by; pauses go by that one).

        Raises :class:`errors.UpstreamRateLimited` or :class:`errors.UpstreamBanned` while
        the exchange is paused (with the time left), and :class:`errors.UpstreamBusy` when
        the budget will not have room before the deadline, or at once for background work.
        """
        account = self._accounts.setdefault(exchange, _Account())
        limit = self._limits(exchange)
        cost = 1.0 if limit.by_request else cost
        background = _background.get()
        waited = False
        while True:
            now = self._clock()
            self._refuse_if_paused(exchange, account, now)
            if background and account.pressed_until > self._wall():
                count("BudgetRefused", exchange=exchange)
                raise errors.UpstreamBusy(
                    f"{exchange}: requests clients wait on go first", retry_after=1.0
                )
            async with account.lock:
                # (the window as of now: waiting for the lock may have crossed into the next)
                window = self._window()
                has = window >= 0 and await self._has(
                    exchange, account, limit, window, cost, now, background
                )
                # Units of a window that ended while they were being granted are void.
                if has and self._window() != window:
                    continue
                if has:
                    account.units -= cost
                    account.spent += cost
                    count("BudgetSpent", cost, exchange=exchange)
                    return
            self._refuse_if_paused(exchange, account, self._clock())
            next_window = (self._wall() // WINDOW_MS + 1) * WINDOW_MS
            wall = self._wall()
            if not background and window >= 0:
                # Clients are waiting: warming and refreshing ahead step aside for a while.
                account.pressed_until = max(account.pressed_until, next_window + WINDOW_MS)
            # A window's last moments are waited out by anyone; a spent budget only by
            # requests a client waits on, and only until their deadline.
            guard = window < 0 and next_window <= deadline_ms
            if not guard and (background or next_window > deadline_ms):
                count("BudgetRefused", exchange=exchange)
                raise errors.UpstreamBusy(
                    f"{exchange}: this service's budget of calls to it is spent for now",
                    retry_after=max(0.001, (next_window - wall) / 1000),
                )
            if not waited and not guard:
                count("BudgetWaits", exchange=exchange)
                waited = True
            latency("BudgetWaitMs", max(0, next_window - wall), exchange=exchange)
            await asyncio.sleep(max(0, next_window - wall) / 1000)

    async def pause(self, exchange: str, until_ms: int, reason: str) -> None:
        """Pause every container's calls to ``exchange`` until ``until_ms``. Never raises."""
        account = self._accounts.setdefault(exchange, _Account())
        if until_ms > account.paused_until:
            account.paused_until, account.pause_reason = until_ms, reason
        count("BudgetPauses", exchange=exchange)
        logger.warning(
            "exchange paused for the fleet",
            extra={"exchange": exchange, "until": until_ms, "reason": reason},
        )
        store = self._usable()
        if store is None:
            return
        try:
            await store.pause(BudgetKey(exchange).text, until_ms, reason)
        except CacheUnavailable as exc:
            self._outage.failed(exc)

    async def heed(self, exchange: str, error: errors.ProxyError, asked: float | None) -> None:
        """Pause the fleet for what an exchange said about calling it again: a ban, a
        geo-block (for ``CIRCUIT_GEO_BLOCK_SECONDS``: where this service runs does not
        change), or a rate limit that came with its ``Retry-After`` (``asked``)."""
        if isinstance(error, errors.UpstreamGeoBlocked):
            await self.pause(exchange, self._clock() + self._geo_block_ms, error.code)
            return
        shared = isinstance(error, errors.UpstreamBanned) or (
            isinstance(error, errors.UpstreamRateLimited) and asked is not None
        )
        if shared and error.retry_after is not None:
            until = self._clock() + round(error.retry_after * 1000)
            await self.pause(exchange, until, error.code)

    async def _has(
        self,
        exchange: str,
        account: _Account,
        limit: Limit,
        window: int,
        cost: float,
        now: int,
        background: bool,
    ) -> bool:
        """Whether this container holds ``cost`` units of the current window, taking a
        lease from the table (or its fallback share) when it does not."""
        if account.window == window and account.units >= cost:
            return True
        if account.window != window:
            account.spent = 0.0
        ceiling = limit.per_window - (limit.reserve if background else 0.0)
        # A lease as large as what this container already spent in the window (up to the
        # lease size): one call's cost for a container that calls rarely, doubling for one
        # that calls often, so that many quiet containers do not lock the budget away.
        want = max(cost, min(limit.lease, account.spent))
        store = self._usable()
        if store is not None:
            try:
                granted = await store.take_units(
                    BudgetKey(exchange).text, window, want, ceiling, now, least=cost
                )
            except CacheUnavailable as exc:
                self._outage.failed(exc)
            else:
                count("BudgetLeases", exchange=exchange)
                if granted.left is not None:
                    count("BudgetLeft", granted.left, exchange=exchange)
                account.paused_until = max(account.paused_until, granted.paused_until)
                account.pause_reason = granted.pause_reason or account.pause_reason
                if account.window != window:
                    account.window, account.units = window, 0.0
                account.units += granted.units
                return account.units >= cost
        return self._fallback(exchange, account, limit, window, cost, ceiling)

    def _fallback(
        self,
        exchange: str,
        account: _Account,
        limit: Limit,
        window: int,
        cost: float,
        ceiling: float,
    ) -> bool:
        """The table cannot be asked: this container's conservative local share, a bucket
        filled at ``BUDGET_FALLBACK_SHARE`` of the fleet's rate and holding one window's
        share (or one request, if that is more). So a share under one request a window is
        kept on average too: on an exchange that takes one request a second from the fleet,
        a container makes one every ten seconds at the default tenth."""
        count("BudgetFallback", exchange=exchange)
        rate = ceiling * self._fallback_share  # units a window
        most = max(cost, rate)
        wall = self._wall()
        if account.local_at is None:
            units = most
        else:
            units = min(most, account.local_units + (wall - account.local_at) / WINDOW_MS * rate)
        account.local_at = wall
        if units < cost:
            account.local_units = units
            return False
        account.local_units = units - cost
        if account.window != window:
            account.window, account.units = window, 0.0
        account.units += cost
        return True

    def _refuse_if_paused(self, exchange: str, account: _Account, now: int) -> None:
        if account.paused_until <= now:
            return
        left = (account.paused_until - now) / 1000
        detail = f"calls to {exchange} are paused for every container ({account.pause_reason})"
        if account.pause_reason == errors.UpstreamRateLimited.code:
            raise errors.UpstreamRateLimited(detail, retry_after=left)
        if account.pause_reason == errors.UpstreamGeoBlocked.code:
            raise errors.UpstreamGeoBlocked(
                f"{exchange} refuses to serve the location this service runs in (a "
                "restricted location, met by another container); deploy in a region it serves"
            )
        raise errors.UpstreamBanned(detail, retry_after=left)

    def _window(self) -> int:
        """The window a request leaving now is counted in; -1 in a window's last moments,
        when none may leave."""
        wall = self._wall()
        if wall % WINDOW_MS >= WINDOW_MS - GUARD_MS:
            return -1
        return wall // WINDOW_MS * WINDOW_MS

    def _usable(self) -> BudgetStore | None:
        return None if self._store is None or self._outage.resting else self._store
