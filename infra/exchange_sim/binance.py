"""Binance's public market-data endpoints, in its wire format.

Followed: Binance Spot API "General endpoints: Exchange information", "Market data
endpoints: Kline/Candlestick data" and "24hr ticker price change statistics"; USDⓈ-M and
COIN-M Futures "Market Data" pages for the same three (developers.binance.com). Numbers are
strings, as Binance sends them.
"""

from __future__ import annotations

from typing import Any

from infra.exchange_sim.frames import Frame
from infra.exchange_sim.market_data import Market, MarketBook

# Interval names as Binance spells them, in milliseconds.
INTERVALS = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
    "1M": 2_592_000_000,
}
FRAMES = {
    name: Frame.weeks()
    if name == "1w"
    else Frame.calendar_months()
    if name == "1M"
    else (Frame.fixed(tf))
    for name, tf in INTERVALS.items()
}
# Where each product lives: host, path prefix, market kind, most klines per request.
PRODUCTS = {
    ("api.binance.com", "/api/v3"): ("spot", 1000),
    ("fapi.binance.com", "/fapi/v1"): ("linear", 1500),
    ("dapi.binance.com", "/dapi/v1"): ("inverse", 1500),
}
PERPETUAL_DELIVERY = 4133404800000
# Signed (SAPI) endpoints ccxt calls while loading markets when it holds credentials: wallet
# "All coins' information", margin "Get All Cross Margin Pairs" and its isolated twin.
SAPI_HOST = "api.binance.com"
CAPITAL_CONFIG = "/sapi/v1/capital/config/getall"
MARGIN_PAIRS = "/sapi/v1/margin/allPairs"
ISOLATED_MARGIN_PAIRS = "/sapi/v1/margin/isolated/allPairs"


def _s(value: float) -> str:
    return f"{value:.8f}"


def _filters() -> list[dict[str, Any]]:
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": "0.01000000",
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": "0.00001000",
            "maxQty": "9000.00000000",
            "stepSize": "0.00001000",
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": "0.00000000",
            "maxQty": "100.00000000",
            "stepSize": "0.00000000",
        },
        {
            "filterType": "TRAILING_DELTA",
            "minTrailingAboveDelta": 10,
            "maxTrailingAboveDelta": 2000,
            "minTrailingBelowDelta": 10,
            "maxTrailingBelowDelta": 2000,
        },
        {
            "filterType": "PERCENT_PRICE_BY_SIDE",
            "bidMultiplierUp": "5",
            "bidMultiplierDown": "0.2",
            "askMultiplierUp": "5",
            "askMultiplierDown": "0.2",
            "avgPriceMins": 5,
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
        {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
    ]


def _spot_symbol(market: Market) -> dict[str, Any]:
    return {
        "symbol": market.id,
        "status": "TRADING",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": _filters(),
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _futures_symbol(market: Market, listed_ms: int | None) -> dict[str, Any]:
    inverse = market.kind == "inverse"
    symbol: dict[str, Any] = {
        "symbol": market.id,
        "pair": market.id.removesuffix("_PERP"),
        "contractType": "PERPETUAL",
        "deliveryDate": PERPETUAL_DELIVERY,
        "onboardDate": listed_ms if listed_ms is not None else 1569398400000,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": market.base,
        "quoteAsset": market.quote,
        "marginAsset": market.base if inverse else market.quote,
        "pricePrecision": 1 if inverse else 2,
        "quantityPrecision": 0 if inverse else 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": _filters()[:2],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }
    if inverse:
        symbol["contractStatus"] = "TRADING"
        symbol["contractSize"] = 100
        symbol["equalQtyPrecision"] = 4
    else:
        symbol["status"] = "TRADING"
    return symbol


def exchange_info(book: MarketBook, kind: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "timezone": "UTC",
        "serverTime": book.now_ms(),
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        ],
        "exchangeFilters": [],
        "symbols": [
            _spot_symbol(m) if kind == "spot" else _futures_symbol(m, book.listed_ms(m))
            for m in book.of_kind("binance", kind)
        ],
    }
    if kind != "spot":
        info["assets"] = [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}]
    return info


def capital_config(book: MarketBook) -> list[dict[str, Any]]:
    """Every spot asset as Binance's wallet lists it, one network each."""
    coins = sorted({a for m in book.of_kind("binance", "spot") for a in (m.base, m.quote)})
    return [
        {
            "coin": coin,
            "depositAllEnable": True,
            "withdrawAllEnable": True,
            "name": coin,
            "free": "0",
            "locked": "0",
            "freeze": "0",
            "withdrawing": "0",
            "ipoing": "0",
            "ipoable": "0",
            "storage": "0",
            "isLegalMoney": False,
            "trading": True,
            "networkList": [
                {
                    "network": coin,
                    "coin": coin,
                    "withdrawIntegerMultiple": "0.00000001",
                    "isDefault": True,
                    "depositEnable": True,
                    "withdrawEnable": True,
                    "depositDesc": "",
                    "withdrawDesc": "",
                    "specialTips": "",
                    "name": coin,
                    "resetAddressStatus": False,
                    "addressRegex": "",
                    "memoRegex": "",
                    "withdrawFee": "0.0001",
                    "withdrawMin": "0.001",
                    "withdrawMax": "9999999",
                    "minConfirm": 1,
                    "unLockConfirm": 2,
                    "sameAddress": False,
                    "estimatedArrivalTime": 5,
                    "busy": False,
                    "contractAddressUrl": "",
                    "contractAddress": "",
                }
            ],
        }
        for coin in coins
    ]


def margin_pairs(book: MarketBook, *, isolated: bool = False) -> list[dict[str, Any]]:
    return [
        {
            **({} if isolated else {"id": str(376870555451677893 + index)}),
            "symbol": market.id,
            "base": market.base,
            "quote": market.quote,
            "isMarginTrade": True,
            "isBuyAllowed": True,
            "isSellAllowed": True,
        }
        for index, market in enumerate(book.of_kind("binance", "spot"))
    ]


def ticker_24hr(book: MarketBook, market: Market) -> dict[str, Any]:
    state = book.ticker(market)
    values = state.as_dict()
    now = state.timestamp
    ticker: dict[str, Any] = {
        "symbol": market.id,
        "priceChange": _s(values["change"]),
        "priceChangePercent": f"{values['percentage']:.3f}",
        "weightedAvgPrice": _s((values["high"] + values["low"] + values["last"]) / 3),
        "lastPrice": _s(values["last"]),
        "lastQty": "0.00100000",
        "openPrice": _s(values["open"]),
        "highPrice": _s(values["high"]),
        "lowPrice": _s(values["low"]),
        "volume": _s(values["base_volume"]),
        "quoteVolume": _s(values["quote_volume"]),
        "openTime": now - 86_400_000,
        "closeTime": now,
        "firstId": 1,
        "lastId": 1000,
        "count": 1000,
    }
    if market.kind == "spot":
        ticker.update(
            {
                "prevClosePrice": _s(values["open"]),
                "bidPrice": _s(values["bid"]),
                "bidQty": "1.00000000",
                "askPrice": _s(values["ask"]),
                "askQty": "1.00000000",
            }
        )
    return ticker


def klines(
    book: MarketBook,
    market: Market,
    interval: str,
    *,
    start: int | None,
    end: int | None,
    limit: int,
) -> list[list[Any]]:
    """Klines as Binance pages them: from ``startTime`` forward, else back from ``endTime``
    (or now), at most ``limit``; the last one may be the open candle. Candles lie on
    multiples of the interval since the epoch, but weeks open on Monday 00:00 UTC and months
    on the 1st."""
    frame = FRAMES[interval]
    stop = (end if end is not None else book.now_ms()) + 1
    if start is not None:
        opens = book.served(market, frame, start, stop, limit=limit)
    else:
        tf = INTERVALS[interval]
        since = max(0, stop - (limit + 2) * (tf * 31 // 30))
        opens = book.served(market, frame, since, stop, limit=limit, newest=True)
    rows = []
    for open_ms in opens:
        length = frame.length(open_ms)
        first, high, low, close, volume = book.candle(market, length, open_ms)
        rows.append(
            [
                open_ms,
                _s(first),
                _s(high),
                _s(low),
                _s(close),
                _s(volume),
                open_ms + length - 1,
                _s(volume * close),
                int(volume * 10) + 1,
                _s(volume / 2),
                _s(volume * close / 2),
                "0",
            ]
        )
    return rows
