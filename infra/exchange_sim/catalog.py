"""Which simulated markets exist on each exchange, under the exchange's own ids.

BTC/USDT and ETH/USDT spot are on every exchange (so one symbol can be compared across all
five); Binance, Bybit and OKX also list USDT-margined perpetuals of both. Ids are spelled as
each exchange spells them: ``BTCUSDT`` (Binance, Bybit), ``XBTUSDT`` (Kraken), ``BTC-USDT``
(Coinbase Exchange, OKX spot), ``BTC-USDT-SWAP`` (OKX perpetual).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Market:
    exchange: str
    id: str
    kind: str  # "spot", "linear" (USDT-margined perpetual) or "inverse" (coin-margined perpetual)
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
COINBASE_MARKETS = (
    Market("coinbaseexchange", "BTC-USD", "spot", "BTC", "USD", 60_003.0),
    Market("coinbaseexchange", "BTC-USDT", "spot", "BTC", "USDT", 60_004.0),
    Market("coinbaseexchange", "ETH-USD", "spot", "ETH", "USD", 3_000.3),
    Market("coinbaseexchange", "ETH-USDT", "spot", "ETH", "USDT", 3_000.4),
    Market("coinbaseexchange", "SOL-USD", "spot", "SOL", "USD", 150.2),
)
BYBIT_MARKETS = (
    Market("bybit", "BTCUSDT", "spot", "BTC", "USDT", 60_006.0),
    Market("bybit", "ETHUSDT", "spot", "ETH", "USDT", 3_000.6),
    Market("bybit", "SOLUSDT", "spot", "SOL", "USDT", 150.3),
    Market("bybit", "BTCUSDT", "linear", "BTC", "USDT", 60_012.0),
    Market("bybit", "ETHUSDT", "linear", "ETH", "USDT", 3_001.2),
)
OKX_MARKETS = (
    Market("okx", "BTC-USDT", "spot", "BTC", "USDT", 60_007.0),
    Market("okx", "ETH-USDT", "spot", "ETH", "USDT", 3_000.7),
    Market("okx", "SOL-USDT", "spot", "SOL", "USDT", 150.4),
    Market("okx", "ETH-BTC", "spot", "ETH", "BTC", 0.05),
    Market("okx", "BTC-USDT-SWAP", "linear", "BTC", "USDT", 60_011.0),
    Market("okx", "ETH-USDT-SWAP", "linear", "ETH", "USDT", 3_001.1),
)
NAMED = {
    "binance": BINANCE_MARKETS,
    "kraken": KRAKEN_MARKETS,
    "coinbaseexchange": COINBASE_MARKETS,
    "bybit": BYBIT_MARKETS,
    "okx": OKX_MARKETS,
}
SUPPORTED = tuple(NAMED)
_HYPHENATED = ("coinbaseexchange", "okx")


def unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def synthetic_markets(exchange: str, count: int, seed: int) -> list[Market]:
    """``count`` extra spot markets with made-up assets, to give markets lists real bulk."""
    quote = "USDT"
    separator = "-" if exchange in _HYPHENATED else ""
    markets = []
    for index in range(count):
        base = f"SIM{index:04d}"
        markets.append(
            Market(
                exchange,
                f"{base}{separator}{quote}",
                "spot",
                base,
                quote,
                1 + 99 * unit(seed, base),
            )
        )
    return markets
