"""Answers made of many tickers: a batch of one exchange's markets, and one market across
exchanges. Each ticker is the same cache entry ``/ticker`` reads and writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from market_proxy import errors, normalize
from market_proxy.answers import Answer
from market_proxy.cache.engine import ReadThrough
from market_proxy.cache.entry import Freshness, Lifetime, Source, digest
from market_proxy.cache.memory import MemoryTier
from market_proxy.cache.store import fanning_out
from market_proxy.exchanges.gateway import ExchangeGateway
from market_proxy.exchanges.venue import Venue, market_kind
from market_proxy.keys import DemandKey, Kind, MarketKey
from market_proxy.settings import Settings
from market_proxy.symbols import validate_symbol_text

ReadTicker = Callable[[str, str], Awaitable[Answer]]
_WEAKEST: tuple[Source, ...] = ("stale", "upstream", "l2", "l1")
_SUGGESTIONS = 3  # as many as one exchange's 404 gives


class Batch:
    def __init__(
        self,
        settings: Settings,
        memory: MemoryTier,
        cache: ReadThrough,
        gateway: ExchangeGateway,
        *,
        ticker: ReadTicker,
        noted: Callable[[DemandKey], Awaitable[None]],
        clock: Callable[[], int],
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._memory = memory
        self._cache = cache
        self._gateway = gateway
        self._ticker = ticker
        self._noted = noted
        # Per exchange and kind of market whose batch of tickers came without bid and ask:
        # whether its single tickers hold them (Coinbase Exchange's batch reads spark-lines,
        # last prices only; Binance's swaps have none either way). Where they do, its
        # tickers are fetched one by one.
        self._thin_batches: dict[tuple[str, str, str], bool] = {}

    async def tickers(self, exchange: str, symbols: Sequence[str]) -> Answer:
        """See :meth:`MarketData.tickers`."""
        most = self._settings.tickers_max_symbols
        if not 1 <= len(symbols) <= most:
            raise errors.InvalidParameter(
                "symbols", f"give 1 to {most} comma-separated symbols", valid=f"1..{most}"
            )
        venue = await self._gateway.venue(exchange)
        venue.require("fetchTicker")
        markets: dict[str, Mapping[str, Any]] = {}
        failed: dict[str, dict[str, Any]] = {}
        for asked in symbols:
            try:
                market = venue.market(asked)
            except errors.ProxyError as exc:
                failed[asked] = exc.problem()
                continue
            markets.setdefault(str(market["symbol"]), market)
        keys = {symbol: MarketKey(Kind.TICKER, venue.id, symbol) for symbol in markets}
        now = self._clock()
        stale = [s for s, key in keys.items() if not _fresh(self._memory, key.text, now)]
        loader = _loaders(self._gateway, venue, markets, stale, self._thin_batches)
        policy = self._settings.ticker_policy
        with fanning_out():
            got = await asyncio.gather(
                *(self._cache.get(keys[s], policy, loader(s)) for s in markets),
                return_exceptions=True,
            )
        answers: dict[str, Answer] = {}
        for symbol, outcome in zip(markets, got, strict=True):
            if isinstance(outcome, errors.ProxyError):
                failed[symbol] = outcome.problem()
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                answers[symbol] = Answer.cached(outcome)
                await self._noted(keys[symbol])
        data = {
            "exchange": venue.id,
            "tickers": {symbol: answer.body() for symbol, answer in answers.items()},
            "errors": failed,
        }
        return _combined(data, answers.values(), failed, self._clock())

    async def compare(self, symbol: str, exchanges: Sequence[str] | None) -> Answer:
        """See :meth:`MarketData.compare`."""
        validate_symbol_text(symbol)  # before asking anyone
        named = list(dict.fromkeys(exchanges)) if exchanges else None
        candidates = named or list(self._settings.exchanges)
        with fanning_out():
            listed = await asyncio.gather(
                *(self._listing(exchange, symbol, named is not None) for exchange in candidates)
            )
            asked = [
                exchange for exchange, why in zip(candidates, listed, strict=True) if why is None
            ]
            got = await asyncio.gather(
                *(self._ticker(exchange, symbol) for exchange in asked), return_exceptions=True
            )
        outcomes: dict[str, Answer | BaseException] = {
            exchange: why
            for exchange, why in zip(candidates, listed, strict=True)
            if why is not None and not isinstance(why, errors.UnknownMarket)
        }
        outcomes.update(zip(asked, got, strict=True))
        if not outcomes:
            raise _unknown_everywhere(symbol, [why for why in listed if why is not None])
        rows: list[dict[str, Any]] = []
        answers: list[Answer] = []
        problems: dict[str, dict[str, Any]] = {}
        for exchange in (candidate for candidate in candidates if candidate in outcomes):
            outcome = outcomes[exchange]
            if isinstance(outcome, errors.ProxyError):
                problems[exchange] = outcome.problem()
                rows.append({"exchange": exchange, "problem": problems[exchange]})
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                answers.append(outcome)
                data = outcome.data
                rows.append(
                    {
                        "exchange": exchange,
                        "market_id": data["market_id"],
                        "bid": data["bid"],
                        "ask": data["ask"],
                        "last": data["last"],
                        "freshness": outcome.freshness_body(),
                    }
                )
        bids = [(r["bid"], r["exchange"]) for r in rows if r.get("bid") is not None]
        asks = [(r["ask"], r["exchange"]) for r in rows if r.get("ask") is not None]
        best_bid, best_ask = max(bids, default=None), min(asks, default=None)
        data = {
            "symbol": answers[0].data["symbol"] if answers else symbol,
            "venues": rows,
            "best_bid": {"exchange": best_bid[1], "price": best_bid[0]} if best_bid else None,
            "best_ask": {"exchange": best_ask[1], "price": best_ask[0]} if best_ask else None,
            "spread": best_ask[0] - best_bid[0] if best_bid and best_ask else None,
        }
        return _combined(data, answers, problems, self._clock())

    async def _listing(self, exchange: str, symbol: str, named: bool) -> errors.ProxyError | None:
        """None where ``exchange`` is to be asked for its ticker: a named one always (its
        problem is the answer), by default one whose markets list the symbol. Else why not:
        :class:`errors.UnknownMarket` where its markets, loaded, do not list it (left out),
        or the problem that kept its markets from loading (listed with it)."""
        if named:
            return None
        try:
            (await self._gateway.venue(exchange)).market(symbol)
        except errors.ProxyError as exc:
            return exc
        return None


def _unknown_everywhere(symbol: str, refusals: Sequence[errors.ProxyError]) -> errors.UnknownMarket:
    """The 404 of a symbol no served exchange lists, with the close names theirs suggest
    (those suggested by more of them first)."""
    votes: dict[str, int] = {}
    for refusal in refusals:
        for suggestion in refusal.extra.get("suggestions") or ():
            votes[suggestion] = votes.get(suggestion, 0) + 1
    ranked = sorted(votes, key=lambda name: -votes[name])  # stable: first suggested first
    return errors.UnknownMarket(
        f"no served exchange has a market {symbol!r}",
        extra={"suggestions": ranked[:_SUGGESTIONS]},
    )


def _fresh(memory: MemoryTier, key: str, now: int) -> bool:
    entry = memory.get(key)
    return entry is not None and entry.is_fresh(now)


def _loaders(
    gateway: ExchangeGateway,
    venue: Venue,
    markets: Mapping[str, Mapping[str, Any]],
    batch: list[str],
    thin: dict[tuple[str, str, str], bool],
) -> Callable[[str], Callable[[], Awaitable[dict[str, Any]]]]:
    """Per symbol, what loads its ticker: one shared ``fetch_tickers`` of the symbols in
    ``batch`` of its kind of market (made by the first loader the engine runs, if any; ccxt
    refuses spot and swaps in one batch on most exchanges), else its own ``fetch_ticker``
    (also for a symbol the batch answer left out, or every symbol when the exchange refused
    the batch as a whole). A batch whose tickers hold no bid and no ask, where the single
    ticker does, is not what ``/ticker`` answers (and fills the same cache): the first such
    answer is compared with a single ticker, the verdict kept in ``thin``, and where the
    single is richer the exchange's tickers of that kind are fetched one by one."""
    groups: dict[tuple[str, str], list[str]] = {}
    for symbol in batch:
        groups.setdefault(market_kind(markets[symbol]), []).append(symbol)
    shared: dict[tuple[str, str], asyncio.Future[Any]] = {}
    batched = venue.has("fetchTickers")

    def loader(symbol: str) -> Callable[[], Awaitable[dict[str, Any]]]:
        market = markets[symbol]
        kind = market_kind(market)
        together = groups.get(kind, [])

        async def one() -> Any:
            return await gateway.call(venue.id, "ticker", lambda: venue.client.fetch_ticker(symbol))

        async def load() -> dict[str, Any]:
            raw = None
            if batched and len(together) > 1 and not thin.get((venue.id, *kind), False):
                if kind not in shared:
                    shared[kind] = asyncio.ensure_future(
                        gateway.call(
                            venue.id, "tickers", lambda: venue.client.fetch_tickers(together)
                        )
                    )
                try:
                    answered = await asyncio.shield(shared[kind])
                except errors.RejectedByExchange:
                    answered = None  # the batch, not this symbol (one may have been delisted)
                raw = answered.get(symbol) if isinstance(answered, Mapping) else None
                if _no_quotes(raw) and (venue.id, *kind) not in thin:
                    raw = await one()
                    thin[(venue.id, *kind)] = not _no_quotes(raw)
            if raw is None:
                raw = await one()
            return normalize.ticker(venue.id, market, raw)

        return load

    return loader


def _no_quotes(raw: Any) -> bool:
    return isinstance(raw, Mapping) and raw.get("bid") is None and raw.get("ask") is None


def _combined(
    data: dict[str, Any],
    answers: Any,
    problems: Mapping[str, Mapping[str, Any]],
    now: int,
) -> Answer:
    """An answer made of several: as fresh as the least fresh, its ETag changing exactly when
    one of theirs (or the problems) does."""
    parts = list(answers)
    if parts:
        lifetime = Lifetime(
            fetched_at=min(a.freshness.lifetime.fetched_at for a in parts),
            fresh_until=min(a.freshness.lifetime.fresh_until for a in parts),
            swr_until=min(a.freshness.lifetime.swr_until for a in parts),
            sie_until=min(a.freshness.lifetime.sie_until for a in parts),
        )
        source = min((a.freshness.source for a in parts), key=_WEAKEST.index)
    else:
        lifetime, source = Lifetime.fixed(now, now), "upstream"
    reason = next((a.freshness.stale_reason for a in parts if a.freshness.is_stale), None)
    tags = sorted(f"{a.data.get('exchange')}:{a.data.get('symbol')}:{a.etag}" for a in parts)
    tags += sorted(f"{name}:{p['code']}" for name, p in problems.items())
    etag = digest("|".join(tags).encode())
    return Answer({**data}, Freshness(lifetime, source, now, reason), etag)
