"""The MCP tools: each an adapter over one :class:`MarketData` call, with the same meaning,
bounds and answers as its REST route.

Input schemas come from the signatures (bounds from the settings, so a bad argument is the
protocol's invalid-params error naming it), closed: an argument no tool parameter names (a
misspelt ``limt``) is refused as one, never ignored. Output schemas come from
:mod:`market_proxy.models`. The SDK's ``Tool`` validates both: arguments before the call, a
successful result after it.
"""

# No ``from __future__ import annotations``: the signatures' bounds are read from the
# settings when the tools are built, so their annotations must be evaluated then.

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, cast

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema

from market_proxy import errors, models
from market_proxy.answers import Answer
from market_proxy.api.params import parse_time
from market_proxy.catalog import MarketQuery
from market_proxy.mcp_server.results import (
    CandlesPage,
    MarketsPage,
    Rows,
    TickersBatch,
    TradesPage,
    body_result,
    reply,
    wire_size,
)
from market_proxy.service import MarketData
from market_proxy.symbols import MAX_SYMBOL_LENGTH, SYMBOL_PATTERN

EXCHANGE_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
Exchange = Annotated[
    str,
    Field(
        description="An exchange id from the allow-list (see list_exchanges), e.g. binance",
        max_length=32,
        pattern=EXCHANGE_PATTERN,
    ),
]
Symbol = Annotated[
    str,
    Field(
        description=(
            "BTC/USDT, BTC-USDT, BTC_USDT, BTC/USDT:USDT (a perpetual swap) or the "
            "exchange's own id (BTCUSDT); any case"
        ),
        min_length=1,
        max_length=MAX_SYMBOL_LENGTH,
        pattern=SYMBOL_PATTERN,
    ),
]


def _moment(value: object, info: ValidationInfo) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
        raise ValueError("give epoch milliseconds or ISO 8601 text")
    try:
        return parse_time(str(info.field_name), None if value is None else str(value))
    except errors.InvalidParameter as exc:
        raise ValueError(exc.detail) from None


Moment = Annotated[
    int | None,
    # Epoch milliseconds as a number or a string, or ISO 8601: read by the validator.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "maxLength": 40},
                {"type": "null"},
            ]
        }
    ),
    BeforeValidator(_moment),
    Field(description="Epoch milliseconds, or ISO 8601 with a zone (2024-01-01T00:00:00Z)"),
]


# Markets a page unless asked: each takes about 1.2 KB of a result (in both blocks), so
# REST's 100 would not fit the default setting, nor would 50.
PAGE = 30
# The least one candle takes in a result, in both blocks: [open time,o,h,l,c,v] with a
# 13-digit open time (any since 2001) and one-digit values, and its comma. A smaller one
# only makes a page shorter than the setting allows, never wrong: next_since continues it.
CANDLE_LEAST_BYTES = 2 * len("[1000000000000,0,0,0,0,0],")


def market_tools(service: MarketData) -> list[Tool]:
    """The tools over ``service``, their bounds read from its settings."""
    s = service.settings
    most = s.mcp_max_result_bytes
    fitting_candles = max(1, (most - wire_size(b"")) // CANDLE_LEAST_BYTES)

    async def list_exchanges() -> Annotated[CallToolResult, models.Exchanges]:
        """The served exchanges and what each offers: tickers (one, or many in one call),
        OHLCV with its timeframes, order books, trades, funding. No upstream call."""
        return body_result({"exchanges": service.exchanges()}, most, parameter="exchanges")

    async def search_markets(
        exchange: Exchange,
        q: Annotated[
            str | None, Field(description="In the symbol, id, base or quote", max_length=64)
        ] = None,
        type: Literal["spot", "swap", "future", "option"] | None = None,
        base: Annotated[str | None, Field(description="e.g. BTC", max_length=32)] = None,
        quote: Annotated[str | None, Field(description="e.g. USDT", max_length=32)] = None,
        active: bool | None = None,
        cursor: Annotated[
            str | None, Field(description="The next_cursor of the same search", max_length=64)
        ] = None,
        limit: Annotated[
            int, Field(description="Markets a page", ge=1, le=s.markets_max_limit)
        ] = min(PAGE, s.markets_max_limit),
    ) -> Annotated[CallToolResult, MarketsPage]:
        """An exchange's markets, filtered, sorted by symbol, a page at a time (pass
        next_cursor as cursor; a page cut to fit continues after its last market). From the
        markets snapshot the service holds: no upstream call while it is fresh."""
        query = MarketQuery(q=q, type=type, base=base, quote=quote, active=active, cursor=cursor)

        def kept(count: int) -> Awaitable[Answer]:
            # The service's cursor continues after a whole page: ask the page of those kept.
            return service.markets(exchange, query, limit=count)

        rows = Rows("markets", again=kept)
        return await reply(kept(limit), most, parameter="limit", rows=rows)

    async def get_ticker(
        exchange: Exchange, symbol: Symbol
    ) -> Annotated[CallToolResult, models.Ticker]:
        """The latest ticker of one market, with how fresh it is. Upstream: at most one
        fetch per market per TICKER_TTL_SECONDS, however many ask."""
        return await reply(service.ticker(exchange, symbol), most, parameter="symbol")

    async def get_tickers(
        exchange: Exchange,
        symbols: Annotated[list[Symbol], Field(min_length=1, max_length=s.tickers_max_symbols)],
    ) -> Annotated[CallToolResult, TickersBatch]:
        """The tickers of several markets of one exchange; a symbol that cannot be answered
        is listed under errors, never failing the others. Upstream: one batch fetch for
        those not fresh in the cache where the exchange has one, else one fetch each."""
        batch = service.tickers(exchange, symbols)
        return await reply(batch, most, parameter="symbols", rows=Rows("tickers"))

    async def get_ohlcv(
        exchange: Exchange,
        symbol: Symbol,
        timeframe: Annotated[
            str, Field(description="One of the exchange's timeframes", max_length=8)
        ] = "1h",
        since: Moment = None,
        until: Moment = None,
        limit: Annotated[
            int | None,
            Field(
                description=f"Candles (default {s.ohlcv_default_limit})",
                ge=1,
                le=s.ohlcv_max_candles,
            ),
        ] = None,
    ) -> Annotated[CallToolResult, CandlesPage]:
        """OHLCV candles of one market: from since, before until, or the latest. A result
        cut to fit, or a range that ends in the past, gives next_since: the since of the
        next page. Upstream: closed candles are cached for good; only the missing ones are
        paged from the exchange (see MarketData.candles), and from since no more than a
        result can hold."""
        if since is not None and (until is None or limit is not None):
            # The first candles from since are kept: those past the most that could fit
            # would only be cut, after paging the exchange for them. Not bounded: without
            # since, the range ends at until or now and its oldest are kept, so asking
            # fewer would answer other candles; since and until without limit ask the
            # whole range (or its refusal, past OHLCV_MAX_CANDLES), as REST does.
            limit = min(limit or s.ohlcv_default_limit, fitting_candles)
        candles = service.candles(
            exchange, symbol, timeframe=timeframe, since=since, until=until, limit=limit
        )
        rows = Rows("candles", finish=_next_since(service.clock))
        return await reply(candles, most, parameter="limit", rows=rows)

    async def get_orderbook(
        exchange: Exchange,
        symbol: Symbol,
        depth: Annotated[
            int | None,
            Field(
                description=f"Levels a side (default {s.orderbook_default_depth})",
                ge=1,
                le=s.orderbook_max_depth,
            ),
        ] = None,
    ) -> Annotated[CallToolResult, models.OrderBook]:
        """The order book of one market, best levels first. Upstream: one fetch per market
        per ORDERBOOK_TTL_MS, whatever the depths asked."""
        return await reply(service.order_book(exchange, symbol, depth), most, parameter="depth")

    async def get_trades(
        exchange: Exchange,
        symbol: Symbol,
        since: Moment = None,
        limit: Annotated[
            int | None,
            Field(
                description=f"How many, newest last (default {s.trades_default_limit})",
                ge=1,
                le=s.trades_max_limit,
            ),
        ] = None,
    ) -> Annotated[CallToolResult, TradesPage]:
        """Recent public trades of one market, newest last. Upstream: one fetch per market
        per TRADES_TTL_SECONDS."""
        trades = service.trades(exchange, symbol, since=since, limit=limit)
        return await reply(trades, most, parameter="limit", rows=Rows("trades", keep_newest=True))

    async def get_funding_rate(
        exchange: Exchange, symbol: Symbol
    ) -> Annotated[CallToolResult, models.Funding]:
        """The current funding of a perpetual swap (BTC/USDT:USDT): rate, next funding
        time, mark and index price. Upstream: one fetch per market per FUNDING_TTL_SECONDS."""
        return await reply(service.funding(exchange, symbol), most, parameter="symbol")

    async def compare_prices(
        symbol: Symbol,
        exchanges: Annotated[
            list[Exchange] | None,
            Field(description="Default: every served exchange that lists it", max_length=32),
        ] = None,
    ) -> Annotated[CallToolResult, models.Comparison]:
        """One market's ticker on several exchanges side by side, with the best bid and ask
        and where they are. Upstream: what get_ticker costs on each, all asked at once."""
        return await reply(service.compare(symbol, exchanges), most, parameter="exchanges")

    titled: dict[Callable[..., Any], str] = {
        list_exchanges: "Served exchanges",
        search_markets: "Search an exchange's markets",
        get_ticker: "Ticker",
        get_tickers: "Tickers of several markets",
        get_ohlcv: "OHLCV candles",
        get_orderbook: "Order book",
        get_trades: "Recent trades",
        get_funding_rate: "Funding rate",
        compare_prices: "One market across exchanges",
    }
    return [
        _closed(
            Tool.from_function(
                fn,
                title=title,
                description=" ".join((inspect.getdoc(fn) or "").split()),
                annotations=_hints(title, world=fn is not list_exchanges),
            )
        )
        for fn, title in titled.items()
    ]


def _closed(tool: Tool) -> Tool:
    """``tool`` refusing arguments it has no parameter for (``additionalProperties: false``,
    and pydantic's ``extra_forbidden`` naming each): the SDK's argument models ignore them."""
    model = tool.fn_metadata.arg_model
    closed = cast(
        type[ArgModelBase],
        type(
            model.__name__,
            (model,),
            {"model_config": ConfigDict(extra="forbid"), "__module__": model.__module__},
        ),
    )
    metadata = tool.fn_metadata.model_copy(update={"arg_model": closed})
    parameters = closed.model_json_schema(by_alias=True)
    return tool.model_copy(update={"fn_metadata": metadata, "parameters": parameters})


def _hints(title: str, *, world: bool) -> ToolAnnotations:
    # Every tool only reads, and asking twice is asking once (the cache answers the second);
    # openWorldHint: the answer comes from an exchange, outside this service.
    return ToolAnnotations(
        title=title,
        read_only_hint=True,
        destructive_hint=False,
        idempotent_hint=True,
        open_world_hint=world,
    )


def _next_since(
    clock: Callable[[], int],
) -> Callable[[dict[str, Any], list[Any], int], dict[str, Any]]:
    def finish(cut: dict[str, Any], rows: list[Any], kept: int) -> dict[str, Any]:
        if kept < len(rows):
            return {**cut, "next_since": int(rows[kept][0])}
        end = int(cut["requested"]["end"])
        return {**cut, "next_since": end if end <= clock() else None}

    return finish
