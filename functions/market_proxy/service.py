"""The MarketData service: the one facade every transport (REST, streams, MCP tools, the
warmer) calls, and nothing reaches past.

It validates what a client asked for against the exchange's own markets and capabilities,
answers from the cache and goes upstream only when the cache cannot serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from market_proxy import errors, normalize
from market_proxy.answers import Answer
from market_proxy.cache.client import make_store
from market_proxy.cache.dynamodb import DynamoDBStore
from market_proxy.cache.engine import ReadThrough
from market_proxy.cache.entry import Cached
from market_proxy.cache.leases import Leases
from market_proxy.cache.memory import MemoryTier
from market_proxy.cache.shared import Outage, SharedTier, Tiers
from market_proxy.candles import CandleStore, plan
from market_proxy.clock import now_ms
from market_proxy.demand import DemandLog
from market_proxy.exchanges.clients import exchange_class
from market_proxy.exchanges.gateway import ExchangeGateway, ohlcv_page_limit
from market_proxy.keys import DemandKey, Kind, MarketKey, SeriesKey
from market_proxy.observability import logger
from market_proxy.settings import Settings, SettingsError

Loader = Callable[[], Awaitable[dict[str, Any]]]


class MarketData:
    def __init__(
        self,
        settings: Settings,
        store: DynamoDBStore | None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        unknown = [ex for ex in settings.exchanges if exchange_class(ex) is None]
        if unknown:
            raise SettingsError(f"EXCHANGES names exchanges ccxt does not know: {unknown}")
        self.settings = settings
        self.clock = clock
        outage = Outage(settings.cache_store_backoff_seconds, clock)
        self._shared = SharedTier(store, outage)
        self._memory = MemoryTier(settings.memory_cache_max_bytes)
        self._leases = Leases(
            self._shared,
            lease_s=settings.lease_seconds,
            wait_s=settings.lease_wait_seconds,
            clock=clock,
        )
        self._cache = ReadThrough(
            self._memory,
            self._shared,
            self._leases,
            negative_ttl_s=settings.negative_ttl_seconds,
            refresh_in_background=settings.refresh_in_background,
            clock=clock,
        )
        self._gateway = ExchangeGateway(settings, self._cache, clock)
        tiers = Tiers(self._memory, self._shared, clock)
        self._candles = CandleStore(
            settings, self._cache, tiers, self._leases, self._gateway, clock
        )
        self._demand = DemandLog(store, outage, clock, flush_every_s=settings.demand_flush_seconds)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], int] = now_ms) -> MarketData:
        """The service wired to DynamoDB as configured (the cold-start path)."""
        return cls(settings, make_store(settings), clock)

    # -- market data ---------------------------------------------------------------------

    async def ticker(self, exchange: str, symbol: str) -> Answer:
        """The ticker of one market, at most ``TICKER_TTL_SECONDS`` old unless marked stale.

        Cost upstream: at most one ``fetch_ticker`` per key per freshness window, however
        many callers ask at once, in this container or in others.
        """
        key, load = await self._ticker_source(exchange, symbol)
        cached = await self._cache.get(key, self.settings.ticker_policy, load)
        await self._noted(key)
        return Answer.cached(cached)

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
        venue = await self._gateway.venue(exchange)
        market = venue.market(symbol)
        venue.require("fetchOHLCV")
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
        answer = await self._candles.candles(venue, market, query)
        await self._noted(SeriesKey(venue.id, market["symbol"], timeframe))
        return answer

    async def resolve(self, exchange: str, symbols: Sequence[str]) -> tuple[str, list[str]]:
        """The exchange's allow-listed id and the canonical symbol of each market named
        (each once, in order), for transports that ask repeatedly (streams).

        Raises :class:`errors.ProxyError` for an unknown exchange or market.
        """
        venue = await self._gateway.venue(exchange)
        canonical = [venue.market(symbol)["symbol"] for symbol in symbols]
        return venue.id, list(dict.fromkeys(canonical))

    # -- what the service offers --------------------------------------------------------

    def exchanges(self) -> list[dict[str, Any]]:
        """What each allow-listed exchange offers; no upstream call."""
        described = []
        for exchange_id in self.settings.exchanges:
            client = self._gateway.client(exchange_id)
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
        circuits = {ex: self._gateway.circuits.state(ex) for ex in self.settings.exchanges}
        report: dict[str, Any] = {
            "status": "ok" if set(circuits.values()) == {"closed"} else "degraded",
            "exchanges": list(self.settings.exchanges),
            "circuits": circuits,
        }
        if deep:
            problem = await self._shared.check()
            if problem == "disabled":
                report["cache"] = {"status": "disabled"}
            elif problem is None:
                report["cache"] = {"status": "ok", "table": self.settings.table_name}
            else:
                report["status"] = "degraded"
                report["cache"] = {"status": "unavailable", "reason": problem}
        return report

    # -- warming ------------------------------------------------------------------------

    async def load_markets(self, exchange: str) -> int:
        """Load an exchange's markets now (from the table's snapshot when it is fresh), so
        that later calls need not; returns how many markets it lists.

        Raises :class:`errors.ProxyError`.
        """
        venue = await self._gateway.venue(exchange)
        return len(venue.symbols)

    async def warm_markets(self, exchange: str, *, unless_fresh_for_s: float) -> Cached | None:
        """Refresh an exchange's markets snapshot unless it stays fresh that long.

        Returns None when nothing was needed. Raises :class:`errors.ProxyError`.
        """
        return await self._gateway.warm_markets(exchange, unless_fresh_for_s=unless_fresh_for_s)

    async def demand_key(self, key: DemandKey) -> DemandKey:
        """``key`` with its symbol in canonical form (as demand is tallied), so that a
        symbol typed in ``WARM_TARGETS`` and the same market asked for by clients are one key.

        Raises :class:`errors.ProxyError` for an unknown exchange or market.
        """
        venue = await self._gateway.venue(key.exchange)
        symbol = venue.market(key.symbol)["symbol"]
        if isinstance(key, SeriesKey):
            return SeriesKey(venue.id, symbol, key.timeframe)
        return MarketKey(key.kind, venue.id, symbol)

    async def warm_ticker(
        self, exchange: str, symbol: str, *, unless_fresh_for_s: float = 0.0
    ) -> Cached | None:
        """Refresh one ticker in the cache unless it stays fresh that long (for warmers).

        Returns None when nothing was needed or another container is refreshing it.
        """
        key, load = await self._ticker_source(exchange, symbol)
        return await self._cache.refresh(
            key, self.settings.ticker_policy, load, unless_fresh_for_s=unless_fresh_for_s
        )

    async def most_asked(self, limit: int) -> list[tuple[DemandKey, int]]:
        """The keys clients asked for most this hour and the last (none without the table)."""
        return await self._demand.most_asked(limit)

    # -- lifecycle ----------------------------------------------------------------------

    async def close(self) -> None:
        await self._cache.close()
        await self._gateway.close()

    async def prepare_snapshot(self) -> None:
        """Before a SnapStart snapshot: load every allow-listed exchange's markets (from the
        table's snapshot when it is young enough), so that restored containers start with
        them, then close every connection (the exchange clients' HTTP sessions, the table's):
        a socket in the snapshot would be dead on restore. Never raises: an exchange that
        cannot be loaded now loads on first use instead.
        """
        for exchange_id in self.settings.exchanges:
            try:
                await self.load_markets(exchange_id)
            except errors.ProxyError as exc:
                logger.warning(
                    "markets not loaded before the snapshot",
                    extra={"exchange": exchange_id, "code": exc.code},
                )
        await self._gateway.suspend()
        self._shared.disconnect()

    async def restored(self) -> None:
        """After a SnapStart restore: what a container must not share with the others
        restored from the same snapshot is made anew (lease identity, HTTP sessions), and
        what the snapshot remembers of the exchanges' health is forgotten (circuits)."""
        self._leases.renew_identity()
        self._gateway.circuits.reset()
        self._gateway.resume()

    # -- helpers ------------------------------------------------------------------------

    async def _ticker_source(self, exchange: str, symbol: str) -> tuple[MarketKey, Loader]:
        venue = await self._gateway.venue(exchange)
        market = venue.market(symbol)
        venue.require("fetchTicker")

        async def load() -> dict[str, Any]:
            raw = await self._gateway.call(
                venue.id, "ticker", lambda: venue.client.fetch_ticker(market["symbol"])
            )
            return normalize.ticker(venue.id, market, raw)

        return MarketKey(Kind.TICKER, venue.id, market["symbol"]), load

    async def _noted(self, key: DemandKey) -> None:
        self._demand.note(key)
        await self._demand.maybe_flush()
