"""The one definition of each answer: what the service builds, what it caches, what every
transport sends and what the OpenAPI document (and the MCP tools' schemas) describe.

Exchange data is validated into these models once, when it arrives from upstream (an answer
that does not fit is an unreadable answer, never a cached one); the cache then holds their
plain-dict form, which every hit serves without validating again.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, NonNegativeFloat

Price = Annotated[NonNegativeFloat, Field(allow_inf_nan=False)]
Amount = Annotated[NonNegativeFloat, Field(allow_inf_nan=False)]


class Freshness(BaseModel):
    source: Literal["l1", "l2", "upstream", "stale"] = Field(
        description="Which tier answered; `stale` means past freshness, see `stale_reason`."
    )
    fetched_at: int = Field(description="When the proxy fetched the data, epoch ms.")
    age_ms: int = Field(description="How long ago that was when this answer was made.")
    fresh_until: int = Field(description="Until when the data counts as fresh, epoch ms.")
    stale: bool
    stale_reason: str | None = Field(
        description="`revalidating` (a refresh is under way), or the failed refresh's error code."
    )
    exchange_timestamp: int | None = Field(description="The exchange's own timestamp, epoch ms.")


class MarketAnswer(BaseModel):
    """What every answer about one market starts with."""

    model_config = ConfigDict(extra="forbid")

    exchange: str
    symbol: str = Field(description="ccxt's canonical symbol, e.g. BTC/USDT or BTC/USDT:USDT")
    market_id: str = Field(description="The exchange's own id of the market, e.g. BTCUSDT")


class TickerData(MarketAnswer):
    timestamp: int | None
    datetime: str | None
    bid: Price | None
    ask: Price | None
    last: Price | None
    open: Price | None
    high: Price | None
    low: Price | None
    close: Price | None
    vwap: Price | None
    base_volume: Amount | None
    quote_volume: Amount | None
    change: FiniteFloat | None
    percentage: FiniteFloat | None


class Ticker(TickerData):
    freshness: Freshness


# What identifies a ticker rather than describes the market's state: a stream's events go
# out when any other field changes.
TICKER_IDENTITY = frozenset({*MarketAnswer.model_fields, "timestamp", "datetime"})
TICKER_STATE = tuple(name for name in TickerData.model_fields if name not in TICKER_IDENTITY)

Level = tuple[Price, Amount]


class OrderBookData(MarketAnswer):
    timestamp: int | None
    datetime: str | None
    nonce: int | None = Field(description="The exchange's sequence number of the book, if any.")
    depth: int = Field(
        description=(
            "Levels per side in this answer: at most those asked for; fewer where the book holds "
            "fewer, or where the exchange refuses ORDERBOOK_MAX_DEPTH and gives its own depth."
        )
    )
    bids: list[Level] = Field(description="[price, amount], best (highest) first.")
    asks: list[Level] = Field(description="[price, amount], best (lowest) first.")
    spread: FiniteFloat | None = Field(description="Best ask less best bid.")
    mid: Price | None = Field(description="Halfway between the best bid and the best ask.")


class OrderBook(OrderBookData):
    freshness: Freshness


class Trade(BaseModel):
    id: str | None
    timestamp: int
    datetime: str | None
    side: Literal["buy", "sell"] | None = Field(description="The taker's side.")
    price: Price
    amount: Amount
    cost: Amount | None


class TradesData(MarketAnswer):
    timestamp: int | None = Field(description="The newest trade's time, epoch ms.")
    trades: list[Trade] = Field(description="Newest last.")


class Trades(TradesData):
    freshness: Freshness


class FundingData(MarketAnswer):
    timestamp: int | None
    datetime: str | None
    funding_rate: FiniteFloat | None = Field(
        description="The rate of the current period, paid at `next_funding_timestamp`."
    )
    next_funding_timestamp: int | None = Field(
        description="The next funding time, epoch ms (the same meaning on every exchange)."
    )
    next_funding_rate: FiniteFloat | None = Field(
        description=(
            "The forecast rate of the period after the current one, where the exchange "
            "publishes one (OKX); paid at `following_funding_timestamp`."
        )
    )
    following_funding_timestamp: int | None = Field(
        description=(
            "The funding time after `next_funding_timestamp`, epoch ms, where the exchange "
            "gives it (OKX); else null."
        )
    )
    interval: str | None = Field(description="How often funding is paid, e.g. 8h.")
    mark_price: Price | None = Field(
        description=(
            "The mark price, where the exchange's funding answer carries it (Binance, Bybit). "
            "Null on OKX, whose funding-rate endpoint has no prices."
        )
    )
    index_price: Price | None = Field(
        description=(
            "The index price, where the exchange's funding answer carries it (Binance, "
            "Bybit). Null on OKX, whose funding-rate endpoint has no prices."
        )
    )


class Funding(FundingData):
    freshness: Freshness


class MarketInfo(BaseModel):
    symbol: str
    market_id: str
    type: str | None = Field(description="spot, swap, future or option.")
    base: str
    quote: str
    settle: str | None
    active: bool | None
    precision: dict[str, Any]
    limits: dict[str, Any]
    accepted: list[str] = Field(description="Ways to write this market that the service reads.")


class Markets(BaseModel):
    exchange: str
    total: int = Field(description="Markets matching the filters, on every page.")
    markets: list[MarketInfo]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    freshness: Freshness


class InlineProblem(BaseModel):
    """A problem as it appears inside an answer (RFC 9457 fields; see `/problems`)."""

    model_config = ConfigDict(extra="allow")

    code: str
    status: int
    title: str
    detail: str
    retryable: bool
    retry_after: int | None = None


class Tickers(BaseModel):
    exchange: str
    tickers: dict[str, Ticker] = Field(description="By canonical symbol.")
    errors: dict[str, InlineProblem] = Field(
        description="By symbol as asked: why it has no ticker."
    )
    freshness: Freshness = Field(description="The batch's: that of its least fresh ticker.")


class VenueTicker(BaseModel):
    exchange: str
    market_id: str | None = None
    bid: Price | None = None
    ask: Price | None = None
    last: Price | None = None
    freshness: Freshness | None = None
    problem: InlineProblem | None = None


class Quote(BaseModel):
    exchange: str
    price: Price


class Comparison(BaseModel):
    symbol: str
    venues: list[VenueTicker] = Field(
        description="Each exchange asked, with its ticker or problem."
    )
    best_bid: Quote | None = Field(description="The highest bid, and where.")
    best_ask: Quote | None = Field(description="The lowest ask, and where.")
    spread: FiniteFloat | None = Field(
        description=(
            "Best ask less best bid across venues (negative: one venue bids above another's ask)."
        )
    )
    freshness: Freshness = Field(description="The comparison's: its least fresh venue's.")


Candle = tuple[int, FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat, FiniteFloat]
CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


class RequestedRange(BaseModel):
    since: int | None
    until: int | None
    limit: int | None
    start: int = Field(description="First candle's open time the range covers, epoch ms.")
    end: int = Field(description="End of the range (exclusive), epoch ms.")
    candles: int


class ReturnedRange(BaseModel):
    start: int | None
    end: int | None
    candles: int
    open_candle: bool = Field(description="Whether the last candle is still open.")


class CandlesData(MarketAnswer):
    timeframe: str
    requested: RequestedRange
    returned: ReturnedRange
    gaps: list[tuple[int, int]] = Field(
        description=(
            "[start, end) ranges inside the answer where the exchange has said it has no "
            "candles (timeframes up to a day)."
        )
    )
    columns: list[str] = Field(description="The meaning of each candle's six values.")
    candles: list[Candle] = Field(description="Integer open time (epoch ms), then five numbers.")


class Candles(CandlesData):
    freshness: Freshness


class ExchangeInfo(BaseModel):
    id: str
    name: str
    ticker: bool
    tickers: bool = Field(description="A batch of tickers in one call (else one call each).")
    ohlcv: bool
    orderbook: bool
    trades: bool
    funding: bool
    timeframes: list[str]
    ohlcv_page_limit: int


class Exchanges(BaseModel):
    exchanges: list[ExchangeInfo]


class Health(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded"] = Field(
        description="`degraded` while an exchange's circuit is not closed or the table fails."
    )
    exchanges: list[str]
    circuits: dict[str, Literal["closed", "open", "half-open"]] = Field(
        description="Per exchange: `open` while this container pauses its calls to it."
    )
    cache: dict[str, Any] | None = None
