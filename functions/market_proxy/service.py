"""The MarketData service: what every entry point (API, stream, warmer) calls.

It validates what a client asked for against the exchange's own markets and capabilities,
answers from the cache and goes upstream only when the cache cannot serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from market_proxy import errors
from market_proxy.cache.dynamodb import make_store
from market_proxy.cache.engine import CacheEngine, now_ms
from market_proxy.cache.entry import Cached
from market_proxy.cache.memory import MemoryTier
from market_proxy.cache.store import CacheStore, CacheUnavailable
from market_proxy.candles import CandleStore, plan
from market_proxy.demand import DemandLog
from market_proxy.exchanges import ExchangeGateway, Venue, exchange_class, ohlcv_page_limit
from market_proxy.observability import logger
from market_proxy.settings import Settings, SettingsError

_TICKER_FIELDS = {
    "bid": "bid",
    "ask": "ask",
    "last": "last",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "vwap": "vwap",
    "base_volume": "baseVolume",
    "quote_volume": "quoteVolume",
    "change": "change",
    "percentage": "percentage",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """A payload with its freshness, ready for any transport."""

    data: dict[str, Any]
    cached: Cached

    def freshness(self) -> dict[str, Any]:
        """How fresh the data is, as every answer reports it."""
        cached = self.cached
        timestamp = self.data.get("timestamp")
        return {
            "source": cached.source,
            "fetched_at": cached.entry.fetched_at,
            "age_ms": cached.age_ms,
            "fresh_until": cached.entry.fresh_until,
            "stale": cached.is_stale,
            "stale_reason": cached.stale_reason,
            "exchange_timestamp": timestamp if isinstance(timestamp, int) else None,
        }

    def body(self) -> dict[str, Any]:
        """The data with its freshness: the JSON every transport sends."""
        return {**self.data, "freshness": self.freshness()}


class MarketData:
    def __init__(
        self, settings: Settings, store: CacheStore | None, clock: Callable[[], int] = now_ms
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.cache = CacheEngine(
            store,
            MemoryTier(settings.memory_cache_max_bytes),
            lease_s=settings.lease_seconds,
            lease_wait_s=settings.lease_wait_seconds,
            negative_ttl_s=settings.negative_ttl_seconds,
            refresh_in_background=settings.refresh_in_background,
            store_backoff_s=settings.cache_store_backoff_seconds,
            clock=clock,
        )
        self.gateway = ExchangeGateway(settings, self.cache, clock)
        unknown = [ex for ex in settings.exchanges if exchange_class(ex) is None]
        if unknown:
            raise SettingsError(f"EXCHANGES names exchanges ccxt does not know: {unknown}")
        self.candle_store = CandleStore(settings, self.cache, self.gateway, clock)
        self.demand = DemandLog(self.cache, clock, flush_every_s=settings.demand_flush_seconds)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], int] = now_ms) -> MarketData:
        """The service wired to DynamoDB as configured (the cold-start path)."""
        return cls(settings, make_store(settings), clock)

    async def ticker(self, exchange: str, symbol: str) -> Answer:
        """The ticker of one market, at most ``TICKER_TTL_SECONDS`` old unless marked stale.

        Cost upstream: at most one ``fetch_ticker`` per key per freshness window, however
        many callers ask at once, in this container or in others.
        """
        key, load = await self._ticker_source(exchange, symbol)
        cached = await self.cache.get(key, self.settings.ticker_policy, load)
        await self._noted(key)
        return Answer(cached.payload, cached)

    async def warm_ticker(
        self, exchange: str, symbol: str, *, unless_fresh_for_s: float = 0.0
    ) -> Cached | None:
        """Refresh one ticker in the cache unless it stays fresh that long (for warmers)."""
        key, load = await self._ticker_source(exchange, symbol)
        return await self.cache.refresh(
            key, self.settings.ticker_policy, load, unless_fresh_for_s=unless_fresh_for_s
        )

    async def _ticker_source(
        self, exchange: str, symbol: str
    ) -> tuple[str, Callable[[], Awaitable[dict[str, Any]]]]:
        venue = await self.gateway.venue(exchange)
        market = venue.symbols.resolve(venue.id, symbol)
        self._require(venue, "fetchTicker")

        async def load() -> dict[str, Any]:
            raw = await self.gateway.call(
                venue.id, "ticker", lambda: venue.client.fetch_ticker(market["symbol"])
            )
            return normalize_ticker(venue.id, market, raw)

        return f"ticker#{venue.id}#{market['symbol']}", load

    async def candles(
        self,
        exchange: str,
        symbol: str,
        *,
        timeframe: str,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
    ) -> Answer:
        """OHLCV candles; see :meth:`CandleStore.candles` for what it costs upstream."""
        venue = await self.gateway.venue(exchange)
        market = venue.symbols.resolve(venue.id, symbol)
        self._require(venue, "fetchOHLCV")
        timeframes = venue.client.timeframes or {}
        if timeframe not in timeframes:
            raise errors.InvalidParameter(
                "timeframe", f"{venue.id} has no timeframe {timeframe!r}", valid=list(timeframes)
            )
        tf_ms = int(venue.client.parse_timeframe(timeframe) * 1000)
        query = plan(
            timeframe=timeframe,
            tf_ms=tf_ms,
            since=since,
            until=until,
            limit=limit,
            now=self.clock(),
            settings=self.settings,
        )
        data, cached = await self.candle_store.candles(venue, market, query)
        await self._noted(f"ohlcv#{venue.id}#{market['symbol']}#{timeframe}")
        return Answer(data, cached)

    def exchanges(self) -> list[dict[str, Any]]:
        """What each allow-listed exchange offers; no upstream call."""
        described = []
        for exchange_id in self.settings.exchanges:
            client = self.gateway.client(exchange_id)
            has = client.has or {}
            described.append(
                {
                    "id": exchange_id,
                    "name": client.name,
                    "ticker": bool(has.get("fetchTicker")),
                    "ohlcv": bool(has.get("fetchOHLCV")),
                    "timeframes": list(client.timeframes or {}),
                    "ohlcv_page_limit": ohlcv_page_limit(client),
                }
            )
        return described

    async def health(self, *, deep: bool) -> dict[str, Any]:
        """Liveness and, per exchange, whether this container is calling it (its circuit);
        with ``deep``, whether the cache table answers. Never raises, never calls upstream."""
        circuits = {ex: self.gateway.circuits.state(ex) for ex in self.settings.exchanges}
        report: dict[str, Any] = {
            "status": "ok" if set(circuits.values()) == {"closed"} else "degraded",
            "exchanges": list(self.settings.exchanges),
            "circuits": circuits,
        }
        if deep:
            if self.store is None:
                report["cache"] = {"status": "disabled"}
            else:
                try:
                    await self.store.ping()
                    report["cache"] = {"status": "ok", "table": self.settings.table_name}
                except CacheUnavailable as exc:
                    report["status"] = "degraded"
                    report["cache"] = {"status": "unavailable", "reason": exc.reason}
        return report

    async def close(self) -> None:
        await self.cache.close()
        await self.gateway.close()

    async def prepare_snapshot(self) -> None:
        """Before a SnapStart snapshot: load every allow-listed exchange's markets (from the
        table's snapshot when it is young enough), so that restored containers start with
        them, then close every connection (the exchange clients' HTTP sessions, the table's):
        a socket in the snapshot would be dead on restore. Never raises: an exchange that
        cannot be loaded now loads on first use instead.
        """
        for exchange_id in self.settings.exchanges:
            try:
                await self.gateway.venue(exchange_id)
            except errors.ProxyError as exc:
                logger.warning(
                    "markets not loaded before the snapshot",
                    extra={"exchange": exchange_id, "code": exc.code},
                )
        await self.gateway.suspend()
        if self.store is not None:
            self.store.disconnect()

    async def restored(self) -> None:
        """After a SnapStart restore: what a container must not share with the others
        restored from the same snapshot is made anew (lease identity, HTTP sessions), and
        what the snapshot remembers of the exchanges' health is forgotten (circuits)."""
        self.cache.renew_identity()
        self.gateway.circuits.reset()
        self.gateway.resume()

    async def _noted(self, key: str) -> None:
        self.demand.note(key)
        await self.demand.maybe_flush()

    @staticmethod
    def _require(venue: Venue, capability: str) -> None:
        if not (venue.client.has or {}).get(capability):
            raise errors.NotSupported(f"{venue.id} does not offer {capability}")


def normalize_ticker(
    exchange_id: str, market: Mapping[str, Any], raw: Mapping[str, Any]
) -> dict[str, Any]:
    """The public shape of a ticker: ccxt's unified fields, named in snake case.

    Raises :class:`errors.UpstreamBadResponse` when the exchange's answer holds no price:
    ccxt's lenient parsers turn an unreadable body into a ticker of nulls.
    """
    ticker: dict[str, Any] = {
        "exchange": exchange_id,
        "symbol": market["symbol"],
        "market_id": market["id"],
        "timestamp": raw.get("timestamp"),
        "datetime": raw.get("datetime"),
    }
    for name, source in _TICKER_FIELDS.items():
        value = raw.get(source)
        ticker[name] = float(value) if isinstance(value, int | float) else None
    if ticker["last"] is None and (ticker["bid"] is None or ticker["ask"] is None):
        raise errors.UpstreamBadResponse(
            f"{exchange_id}: the ticker of {market['symbol']} has no price"
        )
    return ticker
