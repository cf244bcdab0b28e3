"""What the service offers: exchanges, their markets, health and the problem codes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from market_proxy import models
from market_proxy.api import problems, schemas
from market_proxy.api.params import CACHED, CONDITIONAL, Exchange, Market, held_etags, service_of
from market_proxy.api.rendering import json_response, render
from market_proxy.catalog import MarketQuery

router = APIRouter()


@router.get("/exchanges", response_model=models.Exchanges, summary="The served exchanges")
async def exchanges(service: Market) -> Response:
    return json_response(
        {"exchanges": service.exchanges()}, headers={"Cache-Control": "public, max-age=300"}
    )


@router.get(
    "/markets/{exchange}",
    response_model=models.Markets,
    responses=CACHED,
    openapi_extra=CONDITIONAL,
    summary="An exchange's markets, filtered and paged",
)
async def markets(
    request: Request,
    exchange: Exchange,
    q: Annotated[
        str | None,
        Query(
            description="In the symbol, the market id, the base or the quote; any case",
            max_length=64,
        ),
    ] = None,
    type: Annotated[Literal["spot", "swap", "future", "option"] | None, Query()] = None,
    base: Annotated[str | None, Query(max_length=32, description="e.g. BTC")] = None,
    quote: Annotated[str | None, Query(max_length=32, description="e.g. USDT")] = None,
    active: Annotated[bool | None, Query()] = None,
    limit: Annotated[
        int | None, Query(description="Markets a page, 1 to MARKETS_MAX_LIMIT (default 100)", ge=1)
    ] = None,
    cursor: Annotated[
        str | None, Query(description="A next_cursor of the same query", max_length=64)
    ] = None,
) -> Response:
    query = MarketQuery(q=q, type=type, base=base, quote=quote, active=active, cursor=cursor)
    answer = await service_of(request).markets(exchange, query, limit=limit)
    return render(answer, held_etags(request))


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
