"""The simulated markets: which exist, their prices, their candles and their tickers.

Candles are a pure function of (seed, exchange, market, timeframe, open time), so any page
of history is the same whenever it is asked for, and a candle's close is the next one's open.
Tickers start from the same price path and then only change when told to (``set_ticker``,
or the random walk of the demo mode), so tests see exactly the values they set.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Market:
    exchange: str
    id: str
    kind: str  # "spot", "linear" (USDⓈ-M perpetual) or "inverse" (COIN-M perpetual)
    base: str  # the exchange's own asset ids (Kraken: XXBT, ZUSD)
    quote: str
    price: float  # where its price path is centred


BINANCE_MARKETS = (
    Market("binance", "BTCUSDT", "spot", "BTC", "USDT", 60_000.0),
    Market("binance", "ETHUSDT", "spot", "ETH", "USDT", 3_000.0),
    Market("binance", "ETHBTC", "spot", "ETH", "BTC", 0.05),
    Market("binance", "SOLUSDT", "spot", "SOL", "USDT", 150.0),
    Market("binance", "BTCUSDT", "linear", "BTC", "USDT", 60_010.0),
    Market("binance", "ETHUSDT", "linear", "ETH", "USDT", 3_001.0),
    Market("binance", "BTCUSD_PERP", "inverse", "BTC", "USD", 60_005.0),
)
KRAKEN_MARKETS = (
    Market("kraken", "XBTUSDT", "spot", "XXBT", "USDT", 60_002.0),
    Market("kraken", "XXBTZUSD", "spot", "XXBT", "ZUSD", 60_001.0),
    Market("kraken", "ETHUSDT", "spot", "XETH", "USDT", 3_000.5),
    Market("kraken", "XETHZUSD", "spot", "XETH", "ZUSD", 3_000.2),
)
SUPPORTED = ("binance", "kraken")


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def synthetic_markets(exchange: str, count: int, seed: int) -> list[Market]:
    """``count`` extra spot markets with made-up assets, to give markets lists real bulk."""
    quote = "USDT"
    markets = []
    for index in range(count):
        base = f"SIM{index:04d}"
        markets.append(
            Market(exchange, f"{base}{quote}", "spot", base, quote, 1 + 99 * _unit(seed, base))
        )
    return markets


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
            "binance": [*BINANCE_MARKETS, *synthetic_markets("binance", synthetic, seed)],
            "kraken": [*KRAKEN_MARKETS, *synthetic_markets("kraken", synthetic, seed)],
        }
        self._tickers: dict[tuple[str, str, str], TickerState] = {}
        self._gaps: dict[tuple[str, str], list[tuple[int, int]]] = {}
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

    # -- prices and candles -------------------------------------------------------------

    def price_at(self, market: Market, ts_ms: int) -> float:
        """A smooth, deterministic price path: slow and fast waves around the centre."""
        phase = _unit(self.seed, market.exchange, market.id, market.kind) * 2 * math.pi
        days = ts_ms / DAY_MS
        wave = 0.04 * math.sin(2 * math.pi * days / 7 + phase) + 0.01 * math.sin(
            2 * math.pi * days * 24 + phase * 3
        )
        return market.price * (1 + wave)

    def candle(
        self, market: Market, tf_ms: int, open_ms: int
    ) -> tuple[float, float, float, float, float]:
        """(open, high, low, close, volume) of the candle that opens at ``open_ms``."""
        close_at = min(open_ms + tf_ms, max(open_ms + 1, self.now_ms()))
        first = self.price_at(market, open_ms)
        last = self.price_at(market, close_at)
        wiggle_up = _unit(self.seed, market.id, tf_ms, open_ms, "h") * 0.002
        wiggle_down = _unit(self.seed, market.id, tf_ms, open_ms, "l") * 0.002
        high = max(first, last) * (1 + wiggle_up)
        low = min(first, last) * (1 - wiggle_down)
        volume = (0.5 + _unit(self.seed, market.id, tf_ms, open_ms, "v")) * tf_ms / 60_000
        return first, high, low, last, volume

    def candle_opens(self, market: Market, tf_ms: int, start: int, end: int) -> list[int]:
        """Open times of the candles in [start, end) that exist (no gap, not in the future),
        on multiples of ``tf_ms`` since the epoch."""
        first = -(-start // tf_ms) * tf_ms
        return self.existing(market, range(first, end, tf_ms))

    def existing(self, market: Market, opens: Iterable[int]) -> list[int]:
        """Those of ``opens`` (ascending) whose candle exists: no gap, not in the future."""
        now = self.now_ms()
        gaps = self._gaps.get((market.exchange, market.id), [])
        found = []
        for open_ms in opens:
            if open_ms > now:
                break
            if not any(g0 <= open_ms < g1 for g0, g1 in gaps):
                found.append(open_ms)
        return found

    def add_gap(self, exchange: str, market_id: str, start_ms: int, end_ms: int) -> None:
        with self._lock:
            self._gaps.setdefault((exchange, market_id), []).append((start_ms, end_ms))

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
                    base_volume=round(1000 + 9000 * _unit(self.seed, market.id, "vol"), 4),
                )
                self._tickers[key] = state
            state.timestamp = self.now_ms()
            return state

    def set_ticker(self, exchange: str, market_id: str, values: dict[str, float]) -> None:
        markets = [m for m in self.markets[exchange] if m.id == market_id]
        if not markets:
            raise KeyError(f"{exchange} has no market {market_id}")
        for market in markets:
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
