"""Kraken's public market-data endpoints (REST API v0), in its wire format.

Followed: Kraken API reference, Market Data: "Get Asset Info" (/0/public/Assets), "Get
Tradable Asset Pairs" (/0/public/AssetPairs), "Get Ticker Information" (/0/public/Ticker, one
pair, a comma-separated list, or every pair when none is named), "Get OHLC Data"
(/0/public/OHLC), "Get Order Book" (/0/public/Depth, ``count`` 1 to 500, default 100) and "Get
Recent Trades" (/0/public/Trades: trades after ``since``, in seconds or the nanosecond ``last``
of a previous answer, oldest first, ``count`` 1 to 1000, default 1000; the latest ones without
``since``) at docs.kraken.com. Every answer is wrapped in ``{"error": [...], "result":
{...}}``; OHLC serves at most the 720 most recent candles of an interval, whatever ``since``
asks, and always includes the current, uncommitted one.
"""

from __future__ import annotations

from typing import Any

from infra.exchange_sim import activity
from infra.exchange_sim.market_data import Market, MarketBook

HORIZON = 720
INTERVALS_MIN = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
# Kraken's asset ids and the names it shows for them.
_ALTNAMES = {"XXBT": "XBT", "XETH": "ETH", "ZUSD": "USD", "USDT": "USDT"}
_DECIMALS = {"XXBT": 10, "XETH": 10, "ZUSD": 4, "USDT": 8}


def envelope(result: Any) -> dict[str, Any]:
    return {"error": [], "result": result}


def error(*messages: str) -> dict[str, Any]:
    return {"error": list(messages)}


def assets(book: MarketBook) -> dict[str, Any]:
    ids = {"XXBT", "XETH", "ZUSD", "USDT"} | {m.base for m in book.markets["kraken"]}
    result = {}
    for asset in sorted(ids):
        result[asset] = {
            "aclass": "currency",
            "altname": _ALTNAMES.get(asset, asset),
            "decimals": _DECIMALS.get(asset, 8),
            "display_decimals": 5,
            "collateral_value": 1.0 if asset in ("ZUSD", "USDT") else 0.9,
            "status": "enabled",
        }
    return envelope(result)


def _altname(market: Market) -> str:
    return _ALTNAMES.get(market.base, market.base) + _ALTNAMES.get(market.quote, market.quote)


def asset_pairs(book: MarketBook) -> dict[str, Any]:
    result = {}
    for market in book.markets["kraken"]:
        base = _ALTNAMES.get(market.base, market.base)
        quote = _ALTNAMES.get(market.quote, market.quote)
        result[market.id] = {
            "altname": _altname(market),
            "wsname": f"{base}/{quote}",
            "aclass_base": "currency",
            "base": market.base,
            "aclass_quote": "currency",
            "quote": market.quote,
            "lot": "unit",
            "cost_decimals": 5,
            "pair_decimals": 1,
            "lot_decimals": 8,
            "lot_multiplier": 1,
            "leverage_buy": [2, 3, 4, 5],
            "leverage_sell": [2, 3, 4, 5],
            "fees": [[0, 0.4], [10000, 0.35], [50000, 0.24]],
            "fees_maker": [[0, 0.25], [10000, 0.2], [50000, 0.14]],
            "fee_volume_currency": "ZUSD",
            "margin_call": 80,
            "margin_stop": 40,
            "ordermin": "0.00005",
            "costmin": "0.5",
            "tick_size": "0.1",
            "status": "online",
        }
    return envelope(result)


def _s(value: float) -> str:
    return f"{value:.5f}"


def ticker(book: MarketBook, market: Market) -> dict[str, Any]:
    return tickers(book, [market])


def tickers(book: MarketBook, markets: list[Market]) -> dict[str, Any]:
    return envelope({market.id: _ticker_body(book, market) for market in markets})


def _ticker_body(book: MarketBook, market: Market) -> dict[str, Any]:
    values = book.ticker(market).as_dict()
    vwap = (values["high"] + values["low"] + values["last"]) / 3
    return {
        "a": [_s(values["ask"]), "1", "1.000"],
        "b": [_s(values["bid"]), "1", "1.000"],
        "c": [_s(values["last"]), "0.00100000"],
        "v": [f"{values['base_volume'] / 2:.8f}", f"{values['base_volume']:.8f}"],
        "p": [_s(vwap), _s(vwap)],
        "t": [500, 1000],
        "l": [_s(values["low"]), _s(values["low"])],
        "h": [_s(values["high"]), _s(values["high"])],
        "o": _s(values["open"]),
    }


def ohlc(
    book: MarketBook, market: Market, interval_min: int, since_s: int | None
) -> dict[str, Any]:
    tf = interval_min * 60_000
    now_open = book.now_ms() // tf * tf
    horizon_start = now_open - (HORIZON - 1) * tf
    opens = book.candle_opens(market, tf, horizon_start, now_open + 1)
    if since_s is not None:
        # Entries after `since`; the current frame is there regardless.
        opens = [o for o in opens if o // 1000 > since_s or o == now_open]
    rows = []
    for open_ms in opens:
        first, high, low, close, volume = book.candle(market, tf, open_ms)
        vwap = (high + low + close) / 3
        rows.append(
            [
                open_ms // 1000,
                _s(first),
                _s(high),
                _s(low),
                _s(close),
                _s(vwap),
                f"{volume:.8f}",
                int(volume * 10) + 1,
            ]
        )
    last = (now_open - tf) // 1000
    return envelope({market.id: rows, "last": last})


def depth(book: MarketBook, market: Market, count: int) -> dict[str, Any]:
    bids, asks = activity.depth(book, market, count)
    stamp = book.now_ms() // 1000
    return envelope(
        {
            market.id: {
                "asks": [[_s(price), f"{size:.6f}", stamp] for price, size in asks],
                "bids": [[_s(price), f"{size:.6f}", stamp] for price, size in bids],
            }
        }
    )


def trades(book: MarketBook, market: Market, since_ms: int | None, count: int) -> dict[str, Any]:
    """Trades after ``since_ms``, oldest first; the latest ``count`` without it."""
    if since_ms is None:
        found = activity.trades_until(book, market, None, limit=count)
    else:
        found = activity.trades_from(book, market, since_ms + 1, until_ms=None, limit=count)
    rows = [
        [
            _s(t.price),
            f"{t.amount:.8f}",
            round(t.ts / 1000, 4),
            "b" if t.side == "buy" else "s",
            "l" if t.id % 3 else "m",
            "",
            t.id,
        ]
        for t in found
    ]
    last = found[-1].ts if found else (since_ms if since_ms is not None else book.now_ms())
    return envelope({market.id: rows, "last": str(last * 1_000_000)})
