"""The HTTP endpoints. Each adapts a request to one call of the MarketData service."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from market_proxy import errors, models
from market_proxy.api import problems, schemas
from market_proxy.api.rendering import json_response, render
from market_proxy.service import MarketData
from market_proxy.symbols import MAX_SYMBOL_LENGTH, SYMBOL_PATTERN

router = APIRouter()

ERRORS = problems.documented(400, 404, 422, 429, 501, 502, 503, 504)
_FRESHNESS_HEADERS = {
    name: {"description": description, "schema": schema}
    for name, description, schema in (
        ("ETag", "This exact payload; send it back in If-None-Match", {"type": "string"}),
        (
            "Cache-Control",
            "public, max-age=the data's freshness lifetime (with Age)",
            {"type": "string"},
        ),
        ("Age", "Seconds since the data was fetched", {"type": "string"}),
        ("X-Cache", "Which tier answered", {"enum": ["l1", "l2", "upstream", "stale"]}),
        ("X-Data-Age-Ms", "Milliseconds since the data was fetched", {"type": "string"}),
        ("X-Fetched-At", "When the data was fetched, epoch ms", {"type": "string"}),
    )
}
CACHED: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"headers": _FRESHNESS_HEADERS},
    304: {"description": "Not modified (If-None-Match)", "headers": _FRESHNESS_HEADERS},
}
MAX_EXCHANGE_LENGTH = 32
Exchange = Annotated[
    str,
    Path(
        description="An exchange id from the allow-list (see /exchanges), e.g. binance",
        max_length=MAX_EXCHANGE_LENGTH,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
    ),
]
Symbol = Annotated[
    str,
    Path(
        description=(
            "BTC/USDT (its slash as a path separator), BTC-USDT, BTC_USDT, BTC/USDT:USDT, "
            "or the exchange's id (BTCUSDT); any case"
        ),
        # Checked by the service (400 invalid_parameter), like every symbol it is given.
        json_schema_extra={
            "minLength": 1,
            "maxLength": MAX_SYMBOL_LENGTH,
            "pattern": SYMBOL_PATTERN,
            "examples": ["BTC/USDT", "btc-usdt", "BTCUSDT"],
        },
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", description="ETags the client holds: 304 if one matches"),
]
_EPOCH_MS = "[0-9]{1,13}"
_ISO_8601 = (
    "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?"
    "(Z|[+-][0-9]{2}:[0-9]{2})"
)
_TIME_TEXT = f"{_EPOCH_MS}|{_ISO_8601}"
_TIME = re.compile(_TIME_TEXT)
# Epoch milliseconds before 1973 are far more likely epoch seconds sent by mistake (0, the
# same instant either way, is the start of all history).
SECONDS_LOOK_ALIKE_MS = 94_694_400_000


def _moment(description: str) -> Any:
    return Query(
        description=f"{description}: epoch ms, or ISO 8601 with a zone (2024-01-01T00:00:00Z)",
        max_length=40,
        # Checked by parse_time (400 invalid_parameter); empty means not given.
        json_schema_extra={"pattern": f"^({_TIME_TEXT})?$"},
    )


async def market(request: Request) -> MarketData:
    # async: FastAPI runs a plain function dependency on a worker thread, a thread hop
    # (with a thread started per Mangum invocation) on every request.
    service: MarketData = request.app.state.market
    return service


Market = Annotated[MarketData, Depends(market)]


@router.get(
    "/ticker/{exchange}/{symbol:path}",
    response_model=models.Ticker,
    responses=CACHED,
    summary="The latest ticker of one market",
)
async def ticker(
    service: Market, exchange: Exchange, symbol: Symbol, if_none_match: IfNoneMatch = None
) -> Response:
    return render(await service.ticker(exchange, symbol), if_none_match)


@router.get(
    "/historical/{exchange}/{symbol:path}",
    response_model=models.Candles,
    responses=CACHED,
    summary="OHLCV candles of one market",
)
async def historical(
    service: Market,
    exchange: Exchange,
    symbol: Symbol,
    timeframe: Annotated[
        str, Query(description="One of the exchange's timeframes (see /exchanges)", max_length=8)
    ] = "1h",
    since: Annotated[str | None, _moment("First candle's open time")] = None,
    until: Annotated[str | None, _moment("End of the range, exclusive")] = None,
    limit: Annotated[
        int | None,
        Query(description="How many candles, 1 to OHLCV_MAX_CANDLES (see the schema)", ge=1),
    ] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    answer = await service.candles(
        exchange,
        symbol,
        timeframe=timeframe,
        since=parse_time("since", since),
        until=parse_time("until", until),
        limit=limit,
    )
    return render(answer, if_none_match)


@router.get("/exchanges", response_model=models.Exchanges, summary="The served exchanges")
async def exchanges(service: Market) -> Response:
    return json_response(
        {"exchanges": service.exchanges()}, headers={"Cache-Control": "public, max-age=300"}
    )


@router.get(
    "/health",
    response_model=models.Health,
    responses=problems.documented(422),
    summary="Liveness; deep=true checks the table",
)
async def health(service: Market, deep: bool = False) -> Response:
    report = await service.health(deep=deep)
    return json_response(report, headers={"Cache-Control": "no-store"})


@router.get(
    "/problems",
    response_model=schemas.ProblemTypes,
    summary="Every problem code this service answers with",
)
async def problem_types() -> Response:
    return json_response({"problems": problems.describe()})


def parse_time(parameter: str, value: str | None) -> int | None:
    """Epoch milliseconds from ``value``: epoch milliseconds, or ISO 8601 with a zone.

    Empty means not given. Raises :class:`errors.InvalidParameter` for anything else,
    including moments before 1970 or from the year 2286 on (13 digits of milliseconds).
    """
    if value is None or value == "":
        return None
    stamp = -1
    if _TIME.fullmatch(value):
        try:
            stamp = (
                int(value)
                if value.isdigit()
                else int(datetime.fromisoformat(value).timestamp() * 1000)
            )
        except ValueError:  # a day or an hour that does not exist
            stamp = -1
    if not 0 <= stamp < 10**13:
        raise errors.InvalidParameter(
            parameter,
            f"{parameter} must be epoch milliseconds or ISO 8601 with a zone, from 1970 on",
            valid="e.g. 1704067200000 or 2024-01-01T00:00:00Z",
        )
    if value.isdigit() and 0 < stamp < SECONDS_LOOK_ALIKE_MS:
        # 1700000000 is November 2023 in seconds, and 20 January 1970 in milliseconds.
        raise errors.InvalidParameter(
            parameter,
            f"{parameter}={value} is before 1973 in milliseconds: if it is in seconds, "
            f"send {stamp * 1000}",
            valid=f"epoch milliseconds, e.g. {stamp * 1000}",
        )
    return stamp
