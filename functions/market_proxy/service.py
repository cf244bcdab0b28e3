"""The MarketData service: the one facade every transport (REST, streams, MCP tools, the
warmer) calls, and nothing reaches past.

It validates what a client asked for against the exchange's own markets and capabilities,
answers from the cache and goes upstream only when the cache cannot serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from market_proxy import catalog, errors, normalize
from market_proxy.answers import Answer
from market_proxy.batch import Batch
from market_proxy.bootstrap import wire
from market_proxy.cache.client import make_store
from market_proxy.cache.dynamodb import DynamoDBStore
from market_proxy.cache.entry import Cached
from market_proxy.candles import plan
from market_proxy.catalog import MarketQuery
from market_proxy.clock import now_ms
from market_proxy.exchanges.venue import Venue
from market_proxy.keys import DemandKey, MarketKey, SeriesKey
from market_proxy.kinds import FUNDING, ORDERBOOK, SPECS, TICKER, TRADES, Spec
from market_proxy.observability import logger
from market_proxy.settings import Settings

Loader = Callable[[], Awaitable[dict[str, Any]]]


class MarketData:
    def __init__(
        self,
        settings: Settings,
        store: DynamoDBStore | None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.settings = settings
        self.clock = clock
        parts = wire(settings, store, clock)
        self._shared, self._memory, self._leases = parts.shared, parts.memory, parts.leases
        self._cache, self._budget, self._gateway = parts.cache, parts.budget, parts.gateway
        self._candles, self._demand = parts.candles, parts.demand
        self._batch = Batch(
            settings,
            self._memory,
            self._cache,
            self._gateway,
            ticker=self.ticker,
            noted=self._noted,
            clock=clock,
        )

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
        return await self._read(TICKER, exchange, symbol)

    async def tickers(self, exchange: str, symbols: Sequence[str]) -> Answer:
        """The tickers of up to ``TICKERS_MAX_SYMBOLS`` markets of one exchange; a symbol that
        cannot be answered is reported under ``errors``, never failing the others. The same
        cache entries as :meth:`ticker`, both ways.

        Cost upstream: one ``fetch_tickers`` for those not fresh in the cache, where the
        exchange has it; else one ``fetch_ticker`` each (coalesced as :meth:`ticker`'s).
        """
        return await self._batch.tickers(exchange, symbols)

    async def order_book(self, exchange: str, symbol: str, depth: int | None = None) -> Answer:
        """The order book of one market, ``depth`` levels a side (``ORDERBOOK_DEFAULT_DEPTH``
        when not given; at most ``ORDERBOOK_MAX_DEPTH``), at most ``ORDERBOOK_TTL_MS`` old
        unless marked stale.

        Cost upstream: one ``fetch_order_book`` per market per freshness window, whatever
        the depths asked for: it is fetched ``ORDERBOOK_MAX_DEPTH`` deep and cut.
        """
        wanted = self._bounded(
            "depth", depth, self.settings.orderbook_default_depth, self.settings.orderbook_max_depth
        )
        answer = await self._read(ORDERBOOK, exchange, symbol)
        return Answer.assembled(normalize.book_depth(answer.data, wanted), answer.freshness)

    async def trades(
        self, exchange: str, symbol: str, *, since: int | None = None, limit: int | None = None
    ) -> Answer:
        """Recent public trades of one market, newest last: the last ``limit`` of the
        exchange's latest ``TRADES_MAX_LIMIT`` (from ``since`` on, when given).

        Cost upstream: one ``fetch_trades`` per market per ``TRADES_TTL_SECONDS``.
        """
        wanted = self._bounded(
            "limit", limit, self.settings.trades_default_limit, self.settings.trades_max_limit
        )
        answer = await self._read(TRADES, exchange, symbol)
        rows = [t for t in answer.data["trades"] if since is None or t["timestamp"] >= since]
        data = {**answer.data, "trades": rows[-wanted:]}
        return Answer.assembled(data, answer.freshness)

    async def funding(self, exchange: str, symbol: str) -> Answer:
        """The current funding of a perpetual swap: rate, next funding time, mark and index
        price. Raises :class:`errors.UnknownMarket` for a market the exchange does not list,
        :class:`errors.NotSupported` where the exchange has no funding rates at all (whatever
        the market) or the market pays none, and :class:`errors.InvalidParameter` for a spot
        market of an exchange that has perpetuals (naming them).

        Cost upstream: one ``fetch_funding_rate`` per market per ``FUNDING_TTL_SECONDS``.
        """
        venue = await self._gateway.venue(exchange)
        venue.market(symbol)
        # Before the spot check: on an exchange without funding, no market would do.
        venue.require(FUNDING.capability)
        venue.perpetual(symbol)
        return await self._read(FUNDING, exchange, symbol)

    async def compare(self, symbol: str, exchanges: Sequence[str] | None = None) -> Answer:
        """One market's ticker on several exchanges side by side (by default every
        allow-listed exchange that lists it), with the best bid and ask and where they are.

        A venue that fails is listed with its problem and never fails the answer. Cost
        upstream: what :meth:`ticker` costs on each venue, all asked at once.
        """
        return await self._batch.compare(symbol, exchanges)

    async def markets(
        self, exchange: str, query: MarketQuery, *, limit: int | None = None
    ) -> Answer:
        """An exchange's markets, filtered, ``limit`` a page (``MARKETS_DEFAULT_LIMIT``; at
        most ``MARKETS_MAX_LIMIT``), from its markets snapshot (no upstream call while the
        snapshot is fresh). Raises :class:`errors.InvalidParameter` for a limit out of
        bounds or a cursor that is not one this query's pages gave."""
        settings = self.settings
        size = self._bounded(
            "limit", limit, settings.markets_default_limit, settings.markets_max_limit
        )
        venue = await self._gateway.venue(exchange)
        return catalog.markets_page(venue, query, size, self.clock())

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
        query = plan(
            timeframe=timeframe,
            tf_ms=venue.timeframe_ms(timeframe),
            since=since,
            until=until,
            limit=limit,
            now=self.clock(),
            settings=self.settings,
        )
        answer = await self._candles.candles(venue, market, query)
        await self._noted(SeriesKey(venue.id, market["symbol"], timeframe))
        return answer

    async def _read(self, spec: Spec, exchange: str, symbol: str) -> Answer:
        venue = await self._gateway.venue(exchange)
        market = venue.market(symbol)
        venue.require(spec.capability)
        key = MarketKey(spec.kind, venue.id, market["symbol"])
        cached = await self._cache.get(
            key, spec.policy(self.settings), self._loader(spec, venue, market)
        )
        await self._noted(key)
        return Answer.cached(cached)

    def _loader(self, spec: Spec, venue: Venue, market: Mapping[str, Any]) -> Loader:
        async def fetch() -> dict[str, Any]:
            raw = await spec.fetch(venue.client, market["symbol"], self.settings)
            return spec.shape(venue.id, market, raw, self.settings)

        async def load() -> dict[str, Any]:
            # Shaped inside the call: an answer the models refuse is the exchange failing.
            return await self._gateway.call(venue.id, spec.kind.value, fetch)

        return load

    @staticmethod
    def _bounded(name: str, value: int | None, default: int, most: int) -> int:
        if value is None:
            return default
        if not 1 <= value <= most:
            raise errors.InvalidParameter(name, f"{name} must be 1 to {most}", valid=f"1..{most}")
        return value

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
        """What each allow-listed exchange offers (from ccxt's ``has``); no upstream call."""
        return [catalog.describe(self._gateway.client(ex)) for ex in self.settings.exchanges]

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

    async def warm(self, key: MarketKey, *, unless_fresh_for_s: float = 0.0) -> Cached | None:
        """Refresh one market's data in the cache unless it stays fresh that long (for
        warmers). Returns None when nothing was needed or another container refreshes it.
        """
        spec = SPECS[key.kind]
        venue = await self._gateway.venue(key.exchange)
        market = venue.market(key.symbol)
        venue.require(spec.capability)
        return await self._cache.refresh(
            MarketKey(key.kind, venue.id, market["symbol"]),
            spec.policy(self.settings),
            self._loader(spec, venue, market),
            unless_fresh_for_s=unless_fresh_for_s,
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

    async def _noted(self, key: DemandKey) -> None:
        self._demand.note(key)
        await self._demand.maybe_flush()
