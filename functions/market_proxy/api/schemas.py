"""Response shapes, for the OpenAPI document. Handlers render JSON themselves (faster than
validating every answer); tests check that what they render matches these models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


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


class Ticker(BaseModel):
    exchange: str
    symbol: str = Field(description="ccxt's canonical symbol, e.g. BTC/USDT or BTC/USDT:USDT")
    market_id: str = Field(description="The exchange's own id of the market, e.g. BTCUSDT")
    timestamp: int | None
    datetime: str | None
    bid: float | None
    ask: float | None
    last: float | None
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    vwap: float | None
    base_volume: float | None
    quote_volume: float | None
    change: float | None
    percentage: float | None
    freshness: Freshness


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


class Candles(BaseModel):
    exchange: str
    symbol: str
    market_id: str
    timeframe: str
    requested: RequestedRange
    returned: ReturnedRange
    gaps: list[list[int]] = Field(
        description="[start, end) ranges inside the answer where the exchange has no candles."
    )
    columns: list[str]
    candles: list[list[float]]
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


class FieldError(BaseModel):
    parameter: str | None = Field(description="The parameter that is wrong, e.g. `limit`.")
    message: str | None


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    code: str = Field(description="Stable, machine-readable reason.")
    retryable: bool
    parameter: str | None = Field(default=None, description="The parameter at fault.")
    valid: list[Any] | str | None = Field(
        default=None, description="What would be valid: the values, a range, or an example."
    )
    suggestions: list[str] | None = Field(
        default=None, description="Markets with a close name (`unknown_market`)."
    )
    retry_after: int | None = Field(
        default=None, description="Seconds to wait before retrying, as in `Retry-After`."
    )
    errors: list[FieldError] | None = Field(
        default=None, description="Each part of the request that is wrong (`invalid_request`)."
    )


class ProblemType(BaseModel):
    code: str
    status: int
    title: str
    retryable: bool


class ProblemTypes(BaseModel):
    problems: list[ProblemType]


class StreamProblem(BaseModel):
    """The data of a stream's ``problem`` event: one symbol cannot be refreshed for now."""

    symbol: str
    code: str = Field(description="As in problem+json answers.")
    detail: str
    retryable: bool


class Reconnect(BaseModel):
    """The data of a stream's last event, sent before its time limit."""

    reason: Literal["time_limit"]
    retry_ms: int = Field(description="Reconnect after this long, with the event's id.")
