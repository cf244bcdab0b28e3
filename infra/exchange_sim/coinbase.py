"""Coinbase Exchange's public market data (api.exchange.coinbase.com), in its wire format.

Followed: Coinbase Exchange REST API reference (docs.cdp.coinbase.com/exchange): "Get all
known currencies" (/currencies), "Get all known trading pairs" (/products), "Get product
ticker" (/products/{id}/ticker), "Get product stats" (/products/{id}/stats), "Get product book"
(/products/{id}/book, level 1 the best bid and ask, level 2 aggregated levels), "Get product
trades" (/products/{id}/trades, newest first, ``limit`` default 100 and at most 1000, paged by
trade id with ``after`` for older and ``before`` for newer), "Get product candles"
(/products/{id}/candles) and "Get all products' spark-lines" (/products/spark-lines, what
ccxt's ``fetch_tickers`` reads). Prices and sizes are strings, except in candles and
spark-lines, which are JSON numbers; times are ISO 8601 (candles: epoch seconds).

Candles: ``granularity`` one of 60, 300, 900, 3600, 21600, 86400 seconds (candles open on
multiples of it since the epoch); a window of ``start`` and ``end`` (ISO 8601, both or
neither) holds every candle from the one containing ``start`` to the one opening at ``end``,
newest first, at most 300 of them; a window spanning more than 300 granularities is refused;
without a window, the latest 300, the open one included. A window with no candles is ``[]``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.exchange_sim import activity
from infra.exchange_sim.frames import Frame
from infra.exchange_sim.market_data import Market, MarketBook
from infra.exchange_sim.routing import decimal

GRANULARITIES = (60, 300, 900, 3600, 21600, 86400)
MOST_CANDLES = 300
BOOK_LEVELS = {"1": 1, "2": 50, "3": 50}
_FIAT = ("USD", "EUR", "GBP")


def iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def currencies(book: MarketBook) -> list[dict[str, Any]]:
    ids = sorted({a for m in book.markets["coinbaseexchange"] for a in (m.base, m.quote)})
    return [
        {
            "id": currency,
            "name": currency,
            "min_size": "0.01" if currency in _FIAT else "0.00000001",
            "status": "online",
            "message": "",
            "max_precision": "0.01" if currency in _FIAT else "0.00000001",
            "convertible_to": [],
            "details": {
                "type": "fiat" if currency in _FIAT else "crypto",
                "symbol": "$" if currency == "USD" else None,
                "network_confirmations": 0 if currency in _FIAT else 2,
                "sort_order": index,
                "crypto_address_link": "",
                "crypto_transaction_link": "",
                "push_payment_methods": [],
                "group_types": [],
                "display_name": None,
                "processing_time_seconds": None,
                "min_withdrawal_amount": 0.0001,
                "max_withdrawal_amount": 2400,
            },
            "default_network": "",
            "supported_networks": [],
            "display_name": currency,
        }
        for index, currency in enumerate(ids)
    ]


def product(market: Market) -> dict[str, Any]:
    return {
        "id": market.id,
        "base_currency": market.base,
        "quote_currency": market.quote,
        "quote_increment": "0.01" if market.price > 10 else "0.00001",
        "base_increment": "0.00000001",
        "display_name": market.id,
        "min_market_funds": "1",
        "margin_enabled": False,
        "post_only": False,
        "limit_only": False,
        "cancel_only": False,
        "status": "online",
        "status_message": "",
        "trading_disabled": False,
        "fx_stablecoin": False,
        "max_slippage_percentage": "0.03000000",
        "auction_mode": False,
        "high_bid_limit_percentage": "",
    }


def products(book: MarketBook) -> list[dict[str, Any]]:
    return [product(m) for m in book.markets["coinbaseexchange"]]


def ticker(book: MarketBook, market: Market) -> dict[str, Any]:
    state = book.ticker(market)
    last_trade = activity.trades_until(book, market, None, limit=1)
    return {
        "ask": decimal(state.ask),
        "bid": decimal(state.bid),
        "volume": decimal(state.base_volume),
        "trade_id": last_trade[0].id if last_trade else 0,
        "price": decimal(state.last),
        "size": decimal(last_trade[0].amount) if last_trade else "0",
        "time": iso(state.timestamp),
        "rfq_volume": "0",
        "conversions_volume": "0",
    }


def stats(book: MarketBook, market: Market) -> dict[str, Any]:
    values = book.ticker(market).as_dict()
    return {
        "open": decimal(values["open"]),
        "high": decimal(values["high"]),
        "low": decimal(values["low"]),
        "last": decimal(values["last"]),
        "volume": decimal(values["base_volume"]),
        "volume_30day": decimal(values["base_volume"] * 30),
        "rfq_volume_24hour": "0",
        "conversions_volume_24hour": "0",
    }


def spark_lines(book: MarketBook) -> dict[str, list[list[float]]]:
    """Each product's last 24 hours, hourly, newest first; the newest closes at the ticker's
    last price."""
    hour = Frame.fixed(3_600_000)
    answer = {}
    for market in book.markets["coinbaseexchange"]:
        last = book.ticker(market).last
        rows: list[list[float]] = []
        for open_ms in reversed(hour.opens(book.now_ms() - 23 * 3_600_000, book.now_ms() + 1)):
            first, high, low, close, _ = book.candle(market, 3_600_000, open_ms)
            close = last if not rows else close
            rows.append([open_ms // 1000, round(low, 8), round(high, 8), round(first, 8), close])
        answer[market.id] = rows
    return answer


def order_book(book: MarketBook, market: Market, level: str) -> dict[str, Any]:
    bids, asks = activity.depth(book, market, BOOK_LEVELS[level])
    now = book.now_ms()

    def entry(price: float, size: float, index: int) -> list[Any]:
        third: Any = f"{market.id}-{index:08d}" if level == "3" else 1 + index % 4
        return [decimal(price), decimal(size), third]

    return {
        "bids": [entry(p, s, i) for i, (p, s) in enumerate(bids)],
        "asks": [entry(p, s, i) for i, (p, s) in enumerate(asks)],
        "sequence": now,
        "auction_mode": False,
        "auction": None,
        "time": iso(now),
    }


def trades(
    book: MarketBook, market: Market, *, limit: int, after: int | None, before: int | None
) -> list[dict[str, Any]]:
    """Newest first: the latest ``limit``, or those older than trade ``after``, or the
    ``limit`` trades just newer than trade ``before``."""
    if before is not None:
        start = (before + 1) * activity.TRADE_EVERY_MS
        found = activity.trades_from(book, market, start, until_ms=None, limit=limit)
    else:
        until = None if after is None else after * activity.TRADE_EVERY_MS - 1
        found = activity.trades_until(book, market, until, limit=limit)
    return [
        {
            "time": iso(t.ts),
            "trade_id": t.id,
            "price": decimal(t.price),
            "size": decimal(t.amount),
            "side": "buy" if t.side == "sell" else "sell",  # the maker's side
        }
        for t in reversed(found)
    ]


def candles(
    book: MarketBook, market: Market, granularity: int, window: tuple[int, int] | None
) -> list[list[float]]:
    """Rows ``[time, low, high, open, close, volume]``, newest first."""
    tf = granularity * 1000
    frame = Frame.fixed(tf)
    if window is None:
        newest = frame.floor(book.now_ms())
        first, stop = newest - (MOST_CANDLES - 1) * tf, newest + 1
    else:
        first, stop = frame.floor(window[0]), window[1] + 1
    opens = book.served(market, frame, first, stop, limit=MOST_CANDLES, newest=True)
    rows = []
    for open_ms in reversed(opens):
        first_price, high, low, close, volume = book.candle(market, tf, open_ms)
        rows.append(
            [
                open_ms // 1000,
                round(low, 8),
                round(high, 8),
                round(first_price, 8),
                round(close, 8),
                round(volume, 8),
            ]
        )
    return rows
