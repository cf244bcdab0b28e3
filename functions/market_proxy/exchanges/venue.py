"""One exchange as a container knows it: its ccxt client and its markets, and the checks of
what a client asked for against them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from market_proxy import errors
from market_proxy.cache.entry import Lifetime
from market_proxy.symbols import SymbolIndex


def market_kind(market: Mapping[str, Any]) -> tuple[str, str]:
    """A market's type and settlement side: what ccxt keeps together in one batch of
    tickers, and what its per-type options (paging among them) tell apart."""
    return str(market.get("type") or "spot"), "inverse" if market.get("inverse") else "linear"


@dataclass
class Venue:
    """One exchange as this container knows it: its client and its markets."""

    id: str
    client: Any  # a ccxt.async_support.Exchange
    symbols: SymbolIndex
    markets_lifetime: Lifetime

    def has(self, capability: str) -> bool:
        """Whether ccxt's ``has`` says the exchange offers ``capability`` (e.g. fetchTicker)."""
        return bool((self.client.has or {}).get(capability))

    def require(self, capability: str) -> None:
        """Raise :class:`errors.NotSupported` unless the exchange offers ``capability``."""
        if not self.has(capability):
            raise errors.NotSupported(f"{self.id} does not offer {capability}")

    def market(self, symbol: str) -> Mapping[str, Any]:
        """The market ``symbol`` names in any accepted form; see :class:`SymbolIndex`."""
        return self.symbols.resolve(self.id, symbol)

    def timeframe_ms(self, timeframe: str) -> int:
        """How long one ``timeframe`` candle lasts, for a timeframe the exchange serves
        (else :class:`errors.InvalidParameter` listing those it does)."""
        timeframes = self.client.timeframes or {}
        if timeframe not in timeframes:
            raise errors.InvalidParameter(
                "timeframe", f"{self.id} has no timeframe {timeframe!r}", valid=list(timeframes)
            )
        return int(self.client.parse_timeframe(timeframe) * 1000)

    def perpetual(self, symbol: str) -> Mapping[str, Any]:
        """The perpetual swap ``symbol`` names: :class:`errors.InvalidParameter` (naming the
        base's swaps) for a spot market, :class:`errors.NotSupported` for another kind."""
        market = self.market(symbol)
        if market.get("spot"):
            perpetuals = [
                m["symbol"]
                for m in self.client.markets.values()
                if m.get("swap") and m.get("base") == market.get("base")
            ]
            raise errors.InvalidParameter(
                "symbol",
                f"{market['symbol']} is a spot market; funding is paid on perpetual swaps",
                valid=perpetuals[:10] or "a perpetual swap, e.g. BTC/USDT:USDT",
            )
        if not market.get("swap"):
            raise errors.NotSupported(f"{market['symbol']} on {self.id} pays no funding")
        return market
