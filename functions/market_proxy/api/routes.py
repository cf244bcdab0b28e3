"""The market data endpoints. Each adapts a request to one call of the MarketData service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from starlette.requests import Request
from starlette.responses import Response

from market_proxy import models
from market_proxy.api.params import (
    ANY_ITEM,
    CACHED,
    CONDITIONAL,
    Exchange,
    PerpetualSymbol,
    Symbol,
    held_etags,
    moment,
    parse_time,
    service_of,
    symbol_list,
    symbols_query,
)
from market_proxy.api.rendering import CSV, render, render_candles
from market_proxy.settings import TICKERS_MOST, Settings

router = APIRouter()
_TICKERS_WHAT = "a bad one is reported, never failing the others"


def tickers_symbols(most: int) -> Any:
    """/tickers' ``symbols`` for a ``TICKERS_MAX_SYMBOLS`` of ``most``: its text long enough
    for as many as the setting may ever allow, its count checked against the setting."""
    # Items are not held to a symbol's form: a malformed one is reported under errors.
    return symbols_query(most, _TICKERS_WHAT, room_for=TICKERS_MOST, item=ANY_ITEM)


def tickers_bounds(most: int) -> dict[str, Any]:
    """What the OpenAPI document states of /tickers' ``symbols`` where the service allows
    ``most`` (the route is declared with the setting's default, before any setting is read)."""
    query = tickers_symbols(most)
    return {"description": query.description, "pattern": query.json_schema_extra["pattern"]}


@router.get(
    "/ticker/{exchange}/{symbol:path}",
    response_model=models.Ticker,
    responses=CACHED,
    openapi_extra=CONDITIONAL,
    summary="The latest ticker of one market",
)
async def ticker(request: Request, exchange: Exchange, symbol: Symbol) -> Response:
    answer = await service_of(request).ticker(exchange, symbol)
    return render(answer, held_etags(request))


@router.get(
    "/tickers/{exchange}",
    response_model=models.Tickers,
    responses=CACHED,
    openapi_extra=CONDITIONAL,
    summary="The tickers of several markets of one exchange",
)
async def tickers(
    request: Request,
    exchange: Exchange,
    symbols: Annotated[str, tickers_symbols(Settings.model_fields["tickers_max_symbols"].default)],
) -> Response:
    service = service_of(request)
    # One malformed symbol is reported under errors, like one the exchange does not list.
    chosen = symbol_list(symbols, service.settings.tickers_max_symbols, each_checked=False)
    return render(await service.tickers(exchange, chosen), held_etags(request))


@router.get(
    "/orderbook/{exchange}/{symbol:path}",
    response_model=models.OrderBook,
    responses=CACHED,
    openapi_extra=CONDITIONAL,
    summary="The order book of one market",
)
async def order_book(
    request: Request,
    exchange: Exchange,
    symbol: Symbol,
    depth: Annotated[
        int | None,
        Query(description="Levels a side, 1 to ORDERBOOK_MAX_DEPTH (default 20)", ge=1),
    ] = None,
) -> Response:
    return render(
        await service_of(request).order_book(exchange, symbol, depth), held_etags(request)
    )


@router.get(
    "/trades/{exchange}/{symbol:path}",
    response_model=models.Trades,
    responses=CACHED,
    openapi_extra=CONDITIONAL,
    summary="Recent public trades of one market",
)
async def trades(
    request: Request,
    exchange: Exchange,
    symbol: Symbol,
    since: Annotated[str | None, moment("Trades from then on")] = None,
    limit: Annotated[
        int | None,
        Query(description="How many, 1 to TRADES_MAX_LIMIT (default 50), newest last", ge=1),
    ] = None,
) -> Response:
    answer = await service_of(request).trades(
        exchange, symbol, since=parse_time("since", since), limit=limit
    )
    return render(answer, held_etags(request))


@router.get(
    "/funding/{exchange}/{symbol:path}",
    response_model=models.Funding,
    responses=CACHED,
    openapi_extra=CONDITIONAL,
    summary="The current funding of a perpetual swap",
)
async def funding(request: Request, exchange: Exchange, symbol: PerpetualSymbol) -> Response:
    answer = await service_of(request).funding(exchange, symbol)
    return render(answer, held_etags(request))


@router.get(
    "/compare/{symbol:path}",
    response_model=models.Comparison,
    responses=CACHED,
    openapi_extra=CONDITIONAL,
    summary="One market's ticker on several exchanges, side by side",
)
async def compare(
    request: Request,
    symbol: Symbol,
    exchanges: Annotated[
        str | None,
        Query(
            description="Exchange ids, comma-separated (default: every one that lists it)",
            max_length=400,
            pattern=r"^[ ,]*[A-Za-z][A-Za-z0-9_]*([ ,]*,[ ,]*[A-Za-z][A-Za-z0-9_]*)*[ ,]*$",
        ),
    ] = None,
) -> Response:
    named = [part.strip() for part in exchanges.split(",") if part.strip()] if exchanges else None
    return render(await service_of(request).compare(symbol, named), held_etags(request))


@router.get(
    "/historical/{exchange}/{symbol:path}",
    response_model=models.Candles,
    responses={**CACHED, 200: {**CACHED[200], "content": {CSV: {"schema": {"type": "string"}}}}},
    openapi_extra=CONDITIONAL,
    summary="OHLCV candles of one market",
)
async def historical(
    request: Request,
    exchange: Exchange,
    symbol: Symbol,
    timeframe: Annotated[
        str, Query(description="One of the exchange's timeframes (see /exchanges)", max_length=8)
    ] = "1h",
    since: Annotated[str | None, moment("First candle's open time")] = None,
    until: Annotated[str | None, moment("End of the range, exclusive")] = None,
    limit: Annotated[
        int | None,
        Query(description="How many candles, 1 to OHLCV_MAX_CANDLES (see the schema)", ge=1),
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None,
        Query(description="csv: the candles as text/csv (so does Accept: text/csv)"),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    answer = await service_of(request).candles(
        exchange,
        symbol,
        timeframe=timeframe,
        since=parse_time("since", since),
        until=parse_time("until", until),
        limit=limit,
    )
    return render_candles(answer, held_etags(request), accept=accept, format=format)
