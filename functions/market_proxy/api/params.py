"""What the HTTP endpoints take: path and query parameters, as documented and checked.

Bounds that come from settings are written into the OpenAPI document by ``openapi.py``;
what JSON Schema cannot say is checked by the service, answering 400 ``invalid_parameter``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from starlette.requests import Request

from market_proxy import errors
from market_proxy.api import problems
from market_proxy.service import MarketData
from market_proxy.symbols import (
    MAX_SYMBOL_LENGTH,
    SYMBOL_PATTERN,
    SYMBOL_TEXT,
    validate_symbol_text,
)

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


def _symbol(examples: list[str]) -> Any:
    return Path(
        description=(
            "BTC/USDT (its slash as a path separator), BTC-USDT, BTC_USDT, BTC/USDT:USDT, "
            "or the exchange's id (BTCUSDT); any case"
        ),
        # Checked by the service (400 invalid_parameter), like every symbol it is given.
        json_schema_extra={
            "minLength": 1,
            "maxLength": MAX_SYMBOL_LENGTH,
            "pattern": SYMBOL_PATTERN,
            "examples": examples,
        },
    )


Symbol = Annotated[str, _symbol(["BTC/USDT", "btc-usdt", "BTCUSDT"])]
# A perpetual swap's symbol (funding is paid on those).
PerpetualSymbol = Annotated[str, _symbol(["BTC/USDT:USDT", "eth-usdt:usdt"])]
# The cached routes read the service and If-None-Match off the request: each parameter
# FastAPI resolves costs about 17 µs a request under Mangum, a tenth of the whole handler's
# time for an answer from memory. The header is documented here instead.
CONDITIONAL: dict[str, Any] = {
    "parameters": [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "description": "ETags the client holds: 304 if one matches",
            "schema": {"type": "string"},
        }
    ]
}


def service_of(request: Request) -> MarketData:
    """The container's service (what :data:`Market` gives, without a dependency)."""
    service: MarketData = request.app.state.market
    return service


def held_etags(request: Request) -> str | None:
    """The request's If-None-Match, as :data:`CONDITIONAL` documents it."""
    return request.headers.get("if-none-match")


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


def moment(description: str) -> Any:
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


# Symbols separated by commas; spaces around them, and empty items, are ignored.
# Any item at all: for a list whose items are judged one by one in the answer.
ANY_ITEM = "[^ ,][^,]*"


def symbols_query(
    most: int, what: str, *, room_for: int | None = None, item: str = SYMBOL_TEXT
) -> Any:
    """``symbols=A,B,…``: 1 to ``most`` symbols (each as in /ticker, or as ``item`` says),
    in a text long enough for ``room_for`` of them (``most`` unless a setting may allow
    more than the document states; the count is then checked against the setting)."""
    pattern = f"^[ ,]*{item}([ ,]*,[ ,]*{item}){{0,{most - 1}}}[ ,]*$"
    return Query(
        description=(
            f"1 to {most} symbols (each as in /ticker), separated by commas; spaces around "
            f"them and empty items are ignored; {what}"
        ),
        max_length=(room_for or most) * (MAX_SYMBOL_LENGTH + 3),  # ", " between them
        # Checked item by item (400 invalid_parameter), like the symbol of /ticker.
        json_schema_extra={"pattern": pattern, "examples": ["BTC/USDT,ETH/USDT", "btc-usdt"]},
    )


def symbol_list(text: str, most: int, *, each_checked: bool = True) -> list[str]:
    """The symbols ``text`` names, each once: 1 to ``most`` of them, comma-separated.

    Raises :class:`errors.InvalidParameter`, also for a symbol whose text cannot name any
    market, unless ``each_checked`` is off (the answer then reports that symbol alone).
    """
    named = [part for part in (item.strip(" ") for item in text.split(",")) if part]
    if not 1 <= len(named) <= most:
        raise errors.InvalidParameter(
            "symbols", f"give 1 to {most} comma-separated symbols", valid=f"1..{most}"
        )
    for symbol in named if each_checked else ():
        validate_symbol_text(symbol)  # text that cannot name any market: a malformed request
    return list(dict.fromkeys(named))


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
