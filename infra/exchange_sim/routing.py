"""What an exchange's routes are made of: the request they see, the answer they give.

Each exchange has a router (``<exchange>_routes.py``) that names the endpoint category a
request falls in (the call log's ``endpoint``: "markets", "ticker", "tickers", "ohlcv",
"orderbook", "trades", "funding" or "other") and the handler that answers it. A handler
returns the JSON body of a 200, or raises :class:`Reply` for the exchange's own error answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.exchange_sim.market_data import MarketBook


@dataclass(frozen=True, slots=True)
class Call:
    host: str
    path: str
    params: dict[str, str]


class Reply(Exception):
    """Raised by a handler to answer at once (an exchange-style error)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


Handler = Callable[[MarketBook, Call], Any]


@dataclass(frozen=True, slots=True)
class Route:
    endpoint: str
    handler: Handler | None = None  # None: nothing is served there (a 404)


Router = Callable[[Call], Route]
NOT_FOUND = Route("other")


def integer(params: dict[str, str], name: str, invalid: Reply) -> int | None:
    """``params[name]`` as an integer, None when absent, ``invalid`` raised when unreadable."""
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise invalid from None


def decimal(value: float, places: int = 8) -> str:
    """A number as exchanges send them in strings: fixed places, trailing zeros dropped."""
    text = f"{value:.{places}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text
