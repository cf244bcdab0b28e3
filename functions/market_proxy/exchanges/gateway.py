"""The gateway to the exchanges: one ccxt async client per exchange per container.

Clients are created on first use and kept for the life of the container, so their HTTP
sessions, rate limiters and markets are reused across invocations. Markets come from the
shared cache's snapshot when it is young enough, else from the exchange, once. Every ccxt
exception leaves this module already translated (see :func:`failures.from_ccxt`), and every
upstream call passes one circuit breaker per exchange (see :mod:`market_proxy.circuit`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from market_proxy import errors
from market_proxy.budget import Budget
from market_proxy.cache.engine import ReadThrough
from market_proxy.cache.entry import Cached
from market_proxy.circuit import CircuitBreaker
from market_proxy.clock import now_ms
from market_proxy.exchanges.answer_size import capped
from market_proxy.exchanges.ccxt_internals import (
    answer_seen,
    forget_answer,
    markets_snapshot,
    meter,
    restore_markets,
)
from market_proxy.exchanges.clients import Masker, new_client
from market_proxy.exchanges.failures import from_ccxt
from market_proxy.exchanges.signals import retry_after, weight_pause
from market_proxy.exchanges.venue import Venue
from market_proxy.keys import MarketsKey
from market_proxy.observability import Stopwatch, count, latency, logger, traced
from market_proxy.settings import Settings
from market_proxy.symbols import SymbolIndex

T = TypeVar("T")


# When the current upstream call must be answered by (epoch ms), and whether it has left
# the queues (the fleet budget, ccxt's limiter) for the exchange.
_deadline: ContextVar[int] = ContextVar("upstream_deadline", default=0)
_sent: ContextVar[list[bool] | None] = ContextVar("upstream_sent", default=None)


class ExchangeGateway:
    def __init__(
        self,
        settings: Settings,
        cache: ReadThrough,
        clock: Callable[[], int],
        budget: Budget | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._cache = cache
        self._budget = budget
        self._queued: dict[str, int] = {}
        self._pausing: set[asyncio.Future[None]] = set()
        self._venues: dict[str, Venue] = {}
        self._opening: dict[str, asyncio.Task[Venue]] = {}
        self._clients: dict[str, Any] = {}
        self.circuits = CircuitBreaker(
            threshold=settings.circuit_failure_threshold,
            window_s=settings.circuit_window_seconds,
            cooldown_s=settings.circuit_cooldown_seconds,
            clock=clock,
            geo_block_s=settings.circuit_geo_block_seconds,
        )
        self.masked = Masker(settings.exchange_options)

    def check_allowed(self, exchange_id: str) -> str:
        """The allow-listed id ``exchange_id`` names (any case), or :class:`UnknownExchange`."""
        normalized = exchange_id.strip().lower()
        if normalized not in self._settings.exchanges:
            raise errors.UnknownExchange(
                f"{exchange_id[:64]!r} is not served here",
                extra={"valid": list(self._settings.exchanges)},
            )
        return normalized

    def client(self, exchange_id: str) -> Any:
        """The container's ccxt client for an allow-listed exchange, created on first use."""
        client = self._clients.get(exchange_id)
        if client is None:
            try:
                client = new_client(self._settings, exchange_id)
            except LookupError:
                raise errors.UnknownExchange(f"ccxt has no exchange {exchange_id!r}") from None
            meter(client, functools.partial(self._queue, exchange_id))
            self._clients[exchange_id] = client
        return client

    async def venue(self, exchange_id: str) -> Venue:
        """The exchange with its markets loaded; markets are refreshed once they go stale.

        Costs upstream, once per ``MARKETS_TTL_SECONDS`` per exchange for the whole fleet:
        a markets download (some exchanges take several requests), unless another
        container's snapshot in the table is fresh. Raises :class:`errors.ProxyError`.
        """
        exchange_id = self.check_allowed(exchange_id)
        venue = self._venues.get(exchange_id)
        if venue is not None and venue.markets_lifetime.is_fresh(self._clock()):
            return venue
        task = self._opening.get(exchange_id)
        if task is None:
            task = asyncio.create_task(self._open(exchange_id))
            self._opening[exchange_id] = task
            task.add_done_callback(lambda _t: self._opening.pop(exchange_id, None))
        try:
            return await asyncio.shield(task)
        except errors.ProxyError:
            if venue is not None:
                return venue  # markets a little old beat no answer
            raise

    async def _open(self, exchange_id: str) -> Venue:
        cached = await self._cache.get(
            MarketsKey(exchange_id), self._settings.markets_policy, self._downloader(exchange_id)
        )
        return self._install(exchange_id, cached)

    async def warm_markets(self, exchange_id: str, *, unless_fresh_for_s: float) -> Cached | None:
        """Refresh the markets snapshot unless it stays fresh that long (the warmer's job).

        Returns None when nothing was needed. Raises :class:`errors.ProxyError`.
        """
        exchange_id = self.check_allowed(exchange_id)
        cached = await self._cache.refresh(
            MarketsKey(exchange_id),
            self._settings.markets_policy,
            self._downloader(exchange_id),
            unless_fresh_for_s=unless_fresh_for_s,
        )
        if cached is not None:
            self._install(exchange_id, cached)
        return cached

    def _downloader(self, exchange_id: str) -> Callable[[], Awaitable[dict[str, Any]]]:
        client = self.client(exchange_id)

        async def download() -> dict[str, Any]:
            await self.call(exchange_id, "markets", lambda: client.load_markets(reload=True))
            if not client.markets:
                raise errors.UpstreamBadResponse(f"{exchange_id}: the exchange listed no markets")
            return markets_snapshot(client)

        return download

    def _install(self, exchange_id: str, cached: Cached) -> Venue:
        client = self.client(exchange_id)
        freshness = cached.freshness
        if cached.source != "upstream":
            restore_markets(client, cached.payload)
            latency("MarketsSnapshotAge", freshness.age_ms, exchange=exchange_id)
        logger.info(
            "markets ready",
            extra={"exchange": exchange_id, "source": cached.source, "age_ms": freshness.age_ms},
        )
        venue = Venue(
            id=exchange_id,
            client=client,
            symbols=SymbolIndex(client.markets),
            markets_lifetime=freshness.lifetime,
        )
        self._venues[exchange_id] = venue
        return venue

    async def _queue(
        self, exchange_id: str, cost: float, limiter: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Before each request to the exchange: refuse at once when too many requests already
        wait here; else wait in ccxt's own limiter, then for the fleet's budget (both bounded
        by the call's deadline). The budget is taken last, as the request leaves: a unit
        granted while the request still waited in ccxt's queue could be spent in the next
        second, past what the exchange takes in it."""
        waiting = self._queued.get(exchange_id, 0)
        if waiting >= self._settings.upstream_queue_max:
            count("UpstreamQueueFull", exchange=exchange_id)
            raise errors.UpstreamBusy(
                f"{exchange_id}: too many requests to it are waiting already", retry_after=1.0
            )
        self._queued[exchange_id] = waiting + 1
        try:
            result = await limiter()
            if self._budget is not None:
                await self._budget.spend(exchange_id, cost, deadline_ms=_deadline.get())
        finally:
            self._queued[exchange_id] -= 1
        sent = _sent.get()
        if sent is not None:
            sent[0] = True
        return result

    async def call(self, exchange_id: str, what: str, request: Callable[[], Awaitable[T]]) -> T:
        """Run one upstream request, timed, counted and with its errors translated.

        Costs at most one upstream request (aiohttp itself repeats an idempotent GET once when
        the connection drops before an answer), out of the fleet's budget for the exchange.
        One deadline, ``UPSTREAM_TIMEOUT_MS``, covers it all, waiting for the budget and
        ccxt's limiter included. Raises :class:`errors.CircuitOpen` without calling while
        the exchange's circuit is open, :class:`errors.UpstreamBusy` when the request could
        not leave the queues in time, and otherwise the translation of what went wrong
        (:class:`errors.ProxyError`); the outcome feeds the circuit, and a ban or a rate
        limit with a ``Retry-After`` pauses every container's calls to the exchange.
        """
        attempt = self.circuits.admit(exchange_id)
        count("UpstreamCalls", exchange=exchange_id)
        elapsed = Stopwatch()
        forget_answer()
        timeout_ms = self._settings.upstream_timeout_ms
        deadline = _deadline.set(now_ms() + timeout_ms)  # the wall clock's: real seconds
        sent = [False]
        sent_token = _sent.set(sent)
        try:
            # A little longer than ccxt's own timeout of the request, which it then reports.
            async with (
                asyncio.timeout(timeout_ms / 1000 * 1.1 + 0.05),
                traced(f"## upstream {what}", exchange=exchange_id, call=what),
            ):
                with capped(self._settings.answer_cap(what)):
                    result = await request()
            self._read_weight(exchange_id)
        except errors.ProxyError as failure:
            # An answer the service's models refuse is the exchange failing; the queues' or
            # the fleet's refusal (busy, paused) is not, and is not the circuit's business.
            if sent[0]:
                attempt.failed(failure)
                count("UpstreamErrors", exchange=exchange_id)
                logger.warning(
                    "upstream answer refused",
                    extra={"exchange": exchange_id, "what": what, "code": failure.code},
                )
            raise
        except TimeoutError:
            late: errors.ProxyError = (
                errors.UpstreamTimeout(f"{exchange_id} did not answer in time")
                if sent[0]
                else errors.UpstreamBusy(
                    f"{exchange_id}: the queue for it did not clear in time", retry_after=1.0
                )
            )
            attempt.failed(late)
            count("UpstreamErrors", exchange=exchange_id)
            logger.warning(
                "upstream call failed",
                extra={"exchange": exchange_id, "what": what, "code": late.code},
            )
            raise late from None
        except Exception as exc:
            seen = answer_seen()  # None after a timeout or a dropped connection
            cap = self._settings.retry_after_max_seconds
            asked = retry_after(seen.headers, cap, self._clock()) if seen is not None else None
            status = seen.status if seen is not None else None
            error = from_ccxt(exc, exchange_id, retry_after=asked, status=status, what=what)
            paused = attempt.failed(error, retry_after=asked)
            if paused is not None:
                error.retry_after = paused  # no call will be made before then
            if self._budget is not None:
                await self._budget.heed(exchange_id, error, asked)
            count("UpstreamErrors", exchange=exchange_id)
            details: dict[str, Any] = {
                "exchange": exchange_id,
                "what": what,
                "code": error.code,
                "error": f"{type(exc).__name__}: {self.masked(str(exc))}"[:500],
            }
            if self._settings.local_run and seen is None and error.code == "upstream_unavailable":
                details["hint"] = (
                    f"{exchange_id} could not be reached: offline? `make demo` serves the same "
                    "app from a simulated exchange"
                )
            logger.warning("upstream call failed", extra=details)
            raise error from exc
        else:
            attempt.succeeded()
            return result
        finally:
            _deadline.reset(deadline)
            _sent.reset(sent_token)
            attempt.release()
            latency("UpstreamLatency", elapsed.ms, exchange=exchange_id)

    def _read_weight(self, exchange_id: str) -> None:
        """Where the exchange reports the weight used of its limit (Binance's
        ``X-MBX-USED-WEIGHT-1M``), pause the fleet when it nears the limit."""
        seen = answer_seen()
        if seen is None or self._budget is None:
            return
        limit = self._settings.exchange_limits.get(exchange_id, {})
        until = weight_pause(seen.headers, limit, self._clock())
        if until is not None:
            task = asyncio.ensure_future(
                self._budget.pause(exchange_id, until, errors.UpstreamRateLimited.code)
            )
            self._pausing.add(task)
            task.add_done_callback(self._pausing.discard)

    async def close(self) -> None:
        """Close every client's HTTP session (a process shutting down)."""
        clients, self._clients = list(self._clients.values()), {}
        self._venues.clear()
        await asyncio.gather(*(client.close() for client in clients))

    async def suspend(self) -> None:
        """Close the clients' HTTP sessions but keep the clients and their markets.

        Before a SnapStart snapshot: a connection in the snapshot would be dead (or shared by
        every container restored from it) when it is used again.
        """
        await asyncio.gather(*(client.close() for client in self._clients.values()))

    def resume(self) -> None:
        """Give every client a new HTTP session (after a SnapStart restore; on the loop)."""
        for client in self._clients.values():
            client.open()  # ccxt's requests refuse a client closed by its owner until reopened
