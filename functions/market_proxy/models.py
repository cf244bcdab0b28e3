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
    ohlcv: bool
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
