"""OKX's v5 public market data (www.okx.com/api/v5), in its wire format.

Followed: OKX API v5 (www.okx.com/docs-v5/en): Public Data "Get instruments" (``listTime``;
perpetuals carry ``ctVal`` and ``uly``), "Get funding rate" (``fundingTime`` is the coming
settlement, ``nextFundingTime`` the one after; ``instId=ANY`` for every perpetual; no mark
or index price), "Get mark price";
Order Book Trading, Market Data: "Get ticker", "Get tickers" (by ``instType``), "Get order
book" (``books``: ``sz`` per side, default 1, at most 400), "Get trades" (newest first,
``limit`` default 100, at most 500), "Get candlesticks" and "Get candlesticks history".
Every answer is ``{"code": "0", "msg": "", "data": [...]}``; numbers are strings.

Candles: rows ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``, newest first, the
open candle with confirm "0". ``after`` asks for candles older than it, ``before`` for newer
ones (both exclusive; ``before`` alone gives the latest); the answer is the newest ``limit``
(default 100, at most 300; more is served as 300) in that range. ``candles`` serves only the
latest 1440 candles of a bar, ``history-candles`` all history since listing. Bars 1m to 4H lie
on multiples since the epoch; 6H, 12H, 1D, 1W (Monday), 1M and 3M (quarters from January)
open at Hong Kong midnight (UTC+8), their "utc" twins at UTC midnight. For a swap, ``vol``
counts contracts (``ctVal`` of the base each) and ``volCcy`` the base.
"""

from __future__ import annotations

from typing import Any

from infra.exchange_sim import activity
from infra.exchange_sim.frames import DAY_MS, HONG_KONG_MS, HOUR_MS, MINUTE_MS, Frame
from infra.exchange_sim.market_data import Market, MarketBook
from infra.exchange_sim.routing import decimal


def _bars() -> dict[str, Frame]:
    bars = {f"{m}m": Frame.fixed(m * MINUTE_MS) for m in (1, 3, 5, 15, 30)}
    bars.update({f"{h}H": Frame.fixed(h * HOUR_MS) for h in (1, 2, 4)})
    for suffix, shift in (("", HONG_KONG_MS), ("utc", 0)):
        bars[f"6H{suffix}"] = Frame.fixed(6 * HOUR_MS, shift_ms=shift)
        bars[f"12H{suffix}"] = Frame.fixed(12 * HOUR_MS, shift_ms=shift)
        bars[f"1D{suffix}"] = Frame.fixed(DAY_MS, shift_ms=shift)
        bars[f"1W{suffix}"] = Frame.weeks(shift_ms=shift)
        bars[f"1M{suffix}"] = Frame.calendar_months(1, shift_ms=shift)
        bars[f"3M{suffix}"] = Frame.calendar_months(3, shift_ms=shift)
    return bars


BARS = _bars()
RECENT_CANDLES = 1440
MOST_CANDLES = 300
INST_TYPES = {"SPOT": "spot", "SWAP": "linear", "FUTURES": None, "OPTION": None, "MARGIN": None}


def envelope(data: list[Any]) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


def error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "msg": message, "data": []}


def contract_value(market: Market) -> float:
    return 0.01 if market.base == "BTC" else 0.1


def inst_type(market: Market) -> str:
    return "SPOT" if market.kind == "spot" else "SWAP"


def _instrument(book: MarketBook, market: Market) -> dict[str, Any]:
    listed = book.listed_ms(market)
    listed_text = str(listed if listed is not None else 1_606_468_572_000)
    swap = market.kind != "spot"
    return {
        "instType": inst_type(market),
        "instId": market.id,
        "instFamily": f"{market.base}-{market.quote}" if swap else "",
        "uly": f"{market.base}-{market.quote}" if swap else "",
        "baseCcy": "" if swap else market.base,
        "quoteCcy": "" if swap else market.quote,
        "settleCcy": market.quote if swap else "",
        "ctVal": decimal(contract_value(market)) if swap else "",
        "ctMult": "1" if swap else "",
        "ctValCcy": market.base if swap else "",
        "ctType": "linear" if swap else "",
        "optType": "",
        "stk": "",
        "listTime": listed_text,
        "contTdSwTime": listed_text,
        "auctionEndTime": "",
        "expTime": "",
        "lever": "100" if swap else "10",
        "tickSz": "0.1" if market.price > 10 else "0.00001",
        "lotSz": "0.01" if swap else "0.00000001",
        "minSz": "0.01" if swap else "0.00001",
        "maxLmtSz": "100000000",
        "maxMktSz": "1000000",
        "maxLmtAmt": "20000000",
        "maxMktAmt": "1000000",
        "maxTwapSz": "100000000",
        "maxIcebergSz": "100000000",
        "maxTriggerSz": "100000000",
        "maxStopSz": "1000000",
        "ruleType": "normal",
        "state": "live",
        "alias": "",
        "category": "1",
        "futureSettlement": False,
        "openType": "",
        "tradeQuoteCcyList": [] if swap else [market.quote],
    }


def instruments(book: MarketBook, kind: str | None) -> dict[str, Any]:
    markets = book.of_kind("okx", kind) if kind else []
    return envelope([_instrument(book, m) for m in markets])


def _ticker(book: MarketBook, market: Market) -> dict[str, Any]:
    values = book.ticker(market).as_dict()
    swap = market.kind != "spot"
    base_volume = values["base_volume"]
    return {
        "instType": inst_type(market),
        "instId": market.id,
        "last": decimal(values["last"]),
        "lastSz": "0.001",
        "askPx": decimal(values["ask"]),
        "askSz": "1.2",
        "bidPx": decimal(values["bid"]),
        "bidSz": "1.5",
        "open24h": decimal(values["open"]),
        "high24h": decimal(values["high"]),
        "low24h": decimal(values["low"]),
        "volCcy24h": decimal(base_volume if swap else values["quote_volume"], 4),
        "vol24h": decimal(base_volume / contract_value(market) if swap else base_volume, 4),
        "sodUtc0": decimal(values["open"]),
        "sodUtc8": decimal(values["open"]),
        "ts": str(book.ticker(market).timestamp),
    }


def tickers(book: MarketBook, markets: list[Market]) -> dict[str, Any]:
    return envelope([_ticker(book, m) for m in markets])


def candles(
    book: MarketBook,
    market: Market,
    bar: str,
    *,
    after: int | None,
    before: int | None,
    limit: int,
    recent_only: bool,
) -> dict[str, Any]:
    frame = BARS[bar]
    now = book.now_ms()
    low = before + 1 if before is not None else 0
    if recent_only:
        low = max(low, frame.back(frame.floor(now), RECENT_CANDLES - 1))
    stop = after if after is not None else now + 1
    rows = []
    for open_ms in reversed(book.served(market, frame, low, stop, limit=limit, newest=True)):
        length = frame.length(open_ms)
        first, high, low_price, close, volume = book.candle(market, length, open_ms)
        swap = market.kind != "spot"
        quote_volume = volume * close
        rows.append(
            [
                str(open_ms),
                decimal(first),
                decimal(high),
                decimal(low_price),
                decimal(close),
                decimal(volume / contract_value(market) if swap else volume),
                decimal(volume if swap else quote_volume),
                decimal(quote_volume),
                "0" if open_ms + length > now else "1",
            ]
        )
    return envelope(rows)


def order_book(book: MarketBook, market: Market, size: int) -> dict[str, Any]:
    bids, asks = activity.depth(book, market, size)
    return envelope(
        [
            {
                "asks": [
                    [decimal(p), decimal(s), "0", str(1 + i % 5)] for i, (p, s) in enumerate(asks)
                ],
                "bids": [
                    [decimal(p), decimal(s), "0", str(1 + i % 5)] for i, (p, s) in enumerate(bids)
                ],
                "ts": str(book.now_ms()),
            }
        ]
    )


def trades(book: MarketBook, market: Market, limit: int) -> dict[str, Any]:
    found = activity.trades_until(book, market, None, limit=limit)
    return envelope(
        [
            {
                "instId": market.id,
                "side": t.side,
                "sz": decimal(t.amount, 6),
                "px": decimal(t.price),
                "source": "0",
                "tradeId": str(t.id),
                "ts": str(t.ts),
                "count": "1",
            }
            for t in reversed(found)
        ]
    )


def funding_rates(book: MarketBook, markets: list[Market]) -> dict[str, Any]:
    answers = []
    for market in markets:
        funding = activity.funding(book, market)
        answers.append(
            {
                "formulaType": "withRate",
                "fundingRate": decimal(funding.rate),
                "fundingTime": str(funding.next_ms),
                "impactValue": "",
                "instId": market.id,
                "instType": "SWAP",
                "interestRate": "0.0001",
                "maxFundingRate": "0.00375",
                "method": "current_period",
                "minFundingRate": "-0.00375",
                "nextFundingRate": "",
                "nextFundingTime": str(funding.next_ms + funding.interval_ms),
                "premium": "0.0001",
                "settFundingRate": decimal(funding.rate),
                "settState": "settled",
                "ts": str(funding.timestamp),
            }
        )
    return envelope(answers)


def mark_price(book: MarketBook, markets: list[Market]) -> dict[str, Any]:
    answers = []
    for market in markets:
        funding = activity.funding(book, market)
        answers.append(
            {
                "instType": "SWAP",
                "instId": market.id,
                "markPx": decimal(funding.mark),
                "ts": str(funding.timestamp),
            }
        )
    return envelope(answers)
