"""The gateway to the exchanges: one ccxt async client per exchange per container.

Clients are created on first use and kept for the life of the container, so their HTTP
sessions, rate limiters and markets are reused across invocations. Markets come from the
shared cache's snapshot when it is young enough, else from the exchange, once. Every ccxt
exception leaves this module already translated (see :func:`errors.from_ccxt`).
"""

from __future__ import annotations

import asyncio
import copy
import importlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from market_proxy import errors
from market_proxy.cache.engine import CacheEngine, now_ms
from market_proxy.cache.entry import Cached
from market_proxy.observability import count, latency, logger, timed, traced
from market_proxy.settings import Settings
from market_proxy.symbols import SymbolIndex

T = TypeVar("T")

# ccxt market fields never read when fetching tickers or candles; dropping them keeps the
# markets snapshot small (Binance's raw `info` alone is most of its megabytes).
_SNAPSHOT_DROP = ("info",)


@dataclass
class Venue:
    """One exchange as this container knows it."""

    id: str
    client: Any  # a ccxt.async_support.Exchange
    symbols: SymbolIndex
    markets_fresh_until: int

    @property
    def ohlcv_page_limit(self) -> int:
        return ohlcv_page_limit(self.client)


def ohlcv_page_limit(client: Any) -> int:
    """How many candles one request to the exchange returns at most (ccxt's ``features``)."""
    features = client.features or {}
    for market_type in ("spot", "swap", "future"):
        section = features.get(market_type) or {}
        for candidate in (section, *section.values()):
            if isinstance(candidate, Mapping):
                limit = (candidate.get("fetchOHLCV") or {}).get("limit")
                if isinstance(limit, int) and limit > 0:
                    return limit
    return 500


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        held = merged.get(key)
        if isinstance(held, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(held, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def exchange_class(exchange_id: str) -> Any:
    """The ccxt async class for ``exchange_id`` (imports ccxt on first use)."""
    module = importlib.import_module("ccxt.async_support")
    return getattr(module, exchange_id, None)


class ExchangeGateway:
    def __init__(
        self, settings: Settings, cache: CacheEngine, clock: Callable[[], int] = now_ms
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._cache = cache
        self._venues: dict[str, Venue] = {}
        self._opening: dict[str, asyncio.Task[Venue]] = {}
        self._clients: dict[str, Any] = {}

    @property
    def allowed(self) -> tuple[str, ...]:
        return self._settings.exchanges

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
            cls = exchange_class(exchange_id)
            if cls is None:
                raise errors.UnknownExchange(f"ccxt has no exchange {exchange_id!r}")
            config = deep_merge(
                {"enableRateLimit": True, "timeout": self._settings.upstream_timeout_ms},
                self._settings.exchange_options.get(exchange_id, {}),
            )
            client = cls(config)
            self._clients[exchange_id] = client
        return client

    async def venue(self, exchange_id: str) -> Venue:
        """The exchange with its markets loaded; markets are refreshed once they go stale."""
        exchange_id = self.check_allowed(exchange_id)
        venue = self._venues.get(exchange_id)
        if venue is not None and self._clock() < venue.markets_fresh_until:
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
            _markets_key(exchange_id), self._settings.markets_policy, self._downloader(exchange_id)
        )
        return self._install(exchange_id, cached)

    async def warm_markets(self, exchange_id: str, *, unless_fresh_for_s: float) -> Cached | None:
        """Refresh the markets snapshot unless it stays fresh that long (the warmer's job).

        Returns None when nothing was needed. Raises :class:`errors.ProxyError`.
        """
        exchange_id = self.check_allowed(exchange_id)
        cached = await self._cache.refresh(
            _markets_key(exchange_id),
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
            return _snapshot(client)

        return download

    def _install(self, exchange_id: str, cached: Cached) -> Venue:
        client = self.client(exchange_id)
        if cached.source != "upstream":
            _restore(client, cached.payload)
            latency("MarketsSnapshotAge", cached.age_ms, exchange=exchange_id)
        logger.info(
            "markets ready",
            extra={"exchange": exchange_id, "source": cached.source, "age_ms": cached.age_ms},
        )
        count(f"MarketsFrom{cached.source.upper()}", exchange=exchange_id)
        venue = Venue(
            id=exchange_id,
            client=client,
            symbols=SymbolIndex(client.markets),
            markets_fresh_until=cached.entry.fresh_until,
        )
        self._venues[exchange_id] = venue
        return venue

    async def call(self, exchange_id: str, what: str, request: Callable[[], Awaitable[T]]) -> T:
        """Run one upstream request, timed, counted and with its errors translated."""
        client = self.client(exchange_id)
        count("UpstreamCalls", exchange=exchange_id)
        with timed() as elapsed:
            try:
                async with traced(f"## upstream {what}", exchange=exchange_id, call=what):
                    return await request()
            except errors.ProxyError:
                raise
            except Exception as exc:
                error = errors.from_ccxt(
                    exc, exchange_id, retry_after=_retry_after(client.last_response_headers)
                )
                count("UpstreamErrors", exchange=exchange_id)
                logger.warning(
                    "upstream call failed",
                    extra={"exchange": exchange_id, "what": what, "code": error.code},
                )
                raise error from exc
            finally:
                latency("UpstreamLatency", elapsed[0], exchange=exchange_id)

    async def close(self) -> None:
        """Close every client's HTTP session (a process shutting down)."""
        clients, self._clients = list(self._clients.values()), {}
        self._venues.clear()
        for client in clients:
            await client.close()


def _markets_key(exchange_id: str) -> str:
    return f"markets#{exchange_id}"


def _snapshot(client: Any) -> dict[str, Any]:
    """What a new container needs to skip ``load_markets``: markets, currencies, helpers."""
    markets = [
        {k: v for k, v in market.items() if k not in _SNAPSHOT_DROP}
        for market in client.markets.values()
    ]
    currencies = {
        code: {k: v for k, v in currency.items() if k not in _SNAPSHOT_DROP}
        for code, currency in (client.currencies or {}).items()
    }
    helpers = {
        name: client.options[name]
        for name in client.options.get("marketHelperProps", [])
        if client.options.get(name) is not None
    }
    return {"markets": markets, "currencies": currencies, "helpers": helpers}


def _restore(client: Any, snapshot: Mapping[str, Any]) -> None:
    client.set_markets(snapshot["markets"], snapshot.get("currencies") or None)
    client.options.update(snapshot.get("helpers") or {})


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
