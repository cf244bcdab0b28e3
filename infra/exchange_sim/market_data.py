"""The simulated markets: which exist, their prices, their candles and their tickers.

Candles are a pure function of (seed, exchange, market, timeframe, open time), so any page
of history is the same whenever it is asked for, and a candle's close is the next one's open.
Tickers start from the same price path and then only change when told to (``set_ticker``,
or the random walk of the demo mode), so tests see exactly the values they set.

What history an exchange holds is steered per test: a market's listing (no candle or trade
before it), how many candles of each timeframe an exchange still serves, and gaps in its data.
Every wire format asks :meth:`MarketBook.served` which candles exist, so all five agree.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field

from infra.exchange_sim.catalog import (
    BINANCE_MARKETS,
    KRAKEN_MARKETS,
    NAMED,
    SUPPORTED,
    Market,
    synthetic_markets,
    unit,
)
from infra.exchange_sim.frames import Frame

__all__ = [
    "BINANCE_MARKETS",
    "KRAKEN_MARKETS",
    "SUPPORTED",
    "Market",
    "MarketBook",
    "TickerState",
    "synthetic_markets",
]

DAY_MS = 86_400_000


@dataclass
class TickerState:
    last: float
    bid: float
    ask: float
    high: float
    low: float
    open: float
    base_volume: float
    timestamp: int = 0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {
            "last": self.last,
            "bid": self.bid,
            "ask": self.ask,
            "high": self.high,
            "low": self.low,
            "open": self.open,
            "base_volume": self.base_volume,
            "quote_volume": self.base_volume * self.last,
            "change": self.last - self.open,
            "percentage": (self.last - self.open) / self.open * 100 if self.open else 0.0,
            **self.extra,
        }


class MarketBook:
    """All simulated markets and their mutable state; safe to use from several threads."""

    def __init__(self, *, synthetic: int, seed: int) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self.markets: dict[str, list[Market]] = {
            exchange: [*named, *synthetic_markets(exchange, synthetic, seed)]
            for exchange, named in NAMED.items()
        }
        self._tickers: dict[tuple[str, str, str], TickerState] = {}
        self._gaps: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._listings: dict[tuple[str, str, str | None], int] = {}
        self._history_limits: dict[str, int] = {}
        self._clock_ms: int | None = None

    # -- time ---------------------------------------------------------------------------

    def now_ms(self) -> int:
        frozen = self._clock_ms
        return frozen if frozen is not None else time.time_ns() // 1_000_000

    def set_clock(self, now_ms: int | None) -> None:
        self._clock_ms = now_ms

    # -- look-ups -----------------------------------------------------------------------

    def find(self, exchange: str, market_id: str, kind: str | None = None) -> Market | None:
        for market in self.markets[exchange]:
            if market.id == market_id and (kind is None or market.kind == kind):
                return market
        return None

    def of_kind(self, exchange: str, kind: str) -> list[Market]:
        return [m for m in self.markets[exchange] if m.kind == kind]

    def _named(self, exchange: str, market_id: str, kind: str | None = None) -> list[Market]:
        markets = [
            m
            for m in self.markets[exchange]
            if m.id == market_id and (kind is None or m.kind == kind)
        ]
        if not markets:
            raise KeyError(f"{exchange} has no market {market_id}")
        return markets

    # -- what history exists --------------------------------------------------------------

    def set_listing(
        self, exchange: str, market_id: str, listed_ms: int, *, kind: str | None = None
    ) -> None:
        """No candle and no trade of the market exists before ``listed_ms`` (the candle that
        holds that instant is its first); markets answers that carry a listing time show it.
        ``kind`` picks one market where an id names two (Binance's spot and USDT-M BTCUSDT)."""
        self._named(exchange, market_id, kind)
        with self._lock:
            self._listings[(exchange, market_id, kind)] = listed_ms

    def listed_ms(self, market: Market) -> int | None:
        with self._lock:
            exact = self._listings.get((market.exchange, market.id, market.kind))
            return (
                exact
                if exact is not None
                else self._listings.get((market.exchange, market.id, None))
            )

    def set_history_limit(self, exchange: str, candles: int | None) -> None:
        """The exchange serves only the latest ``candles`` candles of each timeframe (older
        windows come back empty); ``None`` serves all history again."""
        if candles is not None and candles < 1:
            raise ValueError("a history limit is at least one candle")
        with self._lock:
            if candles is None:
                self._history_limits.pop(exchange, None)
            else:
                self._history_limits[exchange] = candles

    def history_limit(self, exchange: str) -> int | None:
        with self._lock:
            return self._history_limits.get(exchange)

    def add_gap(self, exchange: str, market_id: str, start_ms: int, end_ms: int) -> None:
        """No candle opening in [start_ms, end_ms), and no trade in it, exists."""
        with self._lock:
            self._gaps.setdefault((exchange, market_id), []).append((start_ms, end_ms))

    def in_gap(self, market: Market, ts_ms: int) -> bool:
        with self._lock:
            gaps = self._gaps.get((market.exchange, market.id), [])
            return any(g0 <= ts_ms < g1 for g0, g1 in gaps)

    def reset_history(self) -> None:
        """Every market's whole history again: no listings, history limits or gaps."""
        with self._lock:
            self._listings.clear()
            self._history_limits.clear()
            self._gaps.clear()

    def served(
        self,
        market: Market,
        frame: Frame,
        start_ms: int,
        stop_ms: int,
        *,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[int]:
        """Open times, ascending, of the candles in [start_ms, stop_ms) that the exchange
        holds: opened by now, listed by then, within its history limit, not in a gap. With
        ``limit``, only the oldest ``limit`` of them (the newest with ``newest``)."""
        now = self.now_ms()
        with self._lock:
            gaps = list(self._gaps.get((market.exchange, market.id), []))
            cap = self._history_limits.get(market.exchange)
        listed = self.listed_ms(market)
        low = start_ms
        if listed is not None:
            low = max(low, frame.floor(listed))
        if cap is not None:
            low = max(low, frame.back(frame.floor(now), cap - 1))
        high = min(stop_ms, now + 1)
        found: list[int] = []
        open_ms = frame.floor(high - 1) if newest else frame.ceil(low)
        while (open_ms >= low if newest else open_ms < high) and len(found) != limit:
            gap = next(((g0, g1) for g0, g1 in gaps if g0 <= open_ms < g1), None)
            if gap is None:
                found.append(open_ms)
                open_ms = frame.previous(open_ms) if newest else frame.next(open_ms)
            else:
                open_ms = frame.floor(gap[0] - 1) if newest else frame.ceil(gap[1])
        return sorted(found)

    def candle_opens(self, market: Market, tf_ms: int, start: int, end: int) -> list[int]:
        """Open times of the candles in [start, end) that exist, on multiples of ``tf_ms``
        since the epoch."""
        return self.served(market, Frame.fixed(tf_ms), start, end)

    # -- prices and candles -------------------------------------------------------------

    def price_at(self, market: Market, ts_ms: int) -> float:
        """A smooth, deterministic price path: slow and fast waves around the centre."""
        phase = unit(self.seed, market.exchange, market.id, market.kind) * 2 * math.pi
        days = ts_ms / DAY_MS
        wave = 0.04 * math.sin(2 * math.pi * days / 7 + phase) + 0.01 * math.sin(
            2 * math.pi * days * 24 + phase * 3
        )
        return market.price * (1 + wave)

    def candle(
        self, market: Market, tf_ms: int, open_ms: int
    ) -> tuple[float, float, float, float, float]:
        """(open, high, low, close, volume) of the candle that opens at ``open_ms`` and lasts
        ``tf_ms``; the open candle's close is the price now: the ticker's last price once the
        ticker has been asked for or set (as on an exchange, where both are the last trade)."""
        now = self.now_ms()
        close_at = min(open_ms + tf_ms, max(open_ms + 1, now))
        first = self.price_at(market, open_ms)
        last = self.price_at(market, close_at)
        if open_ms <= now < open_ms + tf_ms:
            state = self._tickers.get((market.exchange, market.id, market.kind))
            if state is not None:
                last = state.last
        wiggle_up = unit(self.seed, market.id, tf_ms, open_ms, "h") * 0.002
        wiggle_down = unit(self.seed, market.id, tf_ms, open_ms, "l") * 0.002
        high = max(first, last) * (1 + wiggle_up)
        low = min(first, last) * (1 - wiggle_down)
        volume = (0.5 + unit(self.seed, market.id, tf_ms, open_ms, "v")) * tf_ms / 60_000
        return first, high, low, last, volume

    # -- tickers ------------------------------------------------------------------------

    def ticker(self, market: Market) -> TickerState:
        key = (market.exchange, market.id, market.kind)
        with self._lock:
            state = self._tickers.get(key)
            if state is None:
                now = self.now_ms()
                last = round(self.price_at(market, now), 8)
                opened = round(self.price_at(market, now - DAY_MS), 8)
                state = TickerState(
                    last=last,
                    bid=round(last * 0.9999, 8),
                    ask=round(last * 1.0001, 8),
                    high=round(max(last, opened) * 1.01, 8),
                    low=round(min(last, opened) * 0.99, 8),
                    open=opened,
                    base_volume=round(1000 + 9000 * unit(self.seed, market.id, "vol"), 4),
                )
                self._tickers[key] = state
            state.timestamp = self.now_ms()
            return state

    def set_ticker(self, exchange: str, market_id: str, values: dict[str, float]) -> None:
        for market in self._named(exchange, market_id):
            state = self.ticker(market)
            with self._lock:
                last = values.get("last", state.last)
                moved = "last" in values
                state.last = last
                state.bid = values.get("bid", round(last * 0.9999, 8) if moved else state.bid)
                state.ask = values.get("ask", round(last * 1.0001, 8) if moved else state.ask)
                state.high = values.get("high", max(state.high, last))
                state.low = values.get("low", min(state.low, last))
                state.open = values.get("open", state.open)
                state.base_volume = values.get("base_volume", state.base_volume)
                for name, value in values.items():
                    if name not in ("last", "bid", "ask", "high", "low", "open", "base_volume"):
                        state.extra[name] = value

    def walk(self, rng: random.Random) -> None:
        """Move every ticker that has been asked for by a small random step (demo mode)."""
        with self._lock:
            for state in self._tickers.values():
                step = rng.gauss(0, 0.0007)
                state.last = round(state.last * (1 + step), 8)
                spread = state.last * 0.0001
                state.bid = round(state.last - spread, 8)
                state.ask = round(state.last + spread, 8)
                state.high = max(state.high, state.last)
                state.low = min(state.low, state.last)
                state.base_volume = round(state.base_volume + abs(step) * 1000, 4)
