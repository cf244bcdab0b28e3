"""Turning what a client typed into one of the exchange's markets.

Accepted, in any case: the canonical ccxt symbol (``BTC/USDT``, ``BTC/USDT:USDT``), the same
with ``-`` or ``_`` between base and quote (``btc-usdt``, ``BTC_USDT:USDT``), and the
exchange's own market id (``BTCUSDT``, ``XBTUSDT``). Where one id names several markets
(Binance uses ``BTCUSDT`` for spot and for the perpetual), the spot market wins; the
settlement suffix selects the derivative.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from market_proxy.errors import InvalidParameter, UnknownMarket

MAX_SYMBOL_LENGTH = 64
# A letter or digit, then letters, digits and / _ : . - ; length included. The OpenAPI
# document states the same expression (Python and ECMA-262 read it alike).
SYMBOL_TEXT = f"[A-Za-z0-9][A-Za-z0-9/_:.-]{{0,{MAX_SYMBOL_LENGTH - 1}}}"
SYMBOL_PATTERN = f"^{SYMBOL_TEXT}$"
_ALLOWED = re.compile(SYMBOL_TEXT)
_SEPARATOR = re.compile(r"[-_]")


def validate_symbol_text(text: str) -> str:
    """Reject input that cannot be any market's name before touching anything else.

    1 to ``MAX_SYMBOL_LENGTH`` characters, a letter or digit first, then letters, digits and
    ``/ _ : . -``; nothing else, not even surrounding spaces. Raises :class:`InvalidParameter`.
    """
    if not _ALLOWED.fullmatch(text):
        raise InvalidParameter(
            "symbol",
            f"symbol must be 1 to {MAX_SYMBOL_LENGTH} characters: a letter or digit, then "
            "letters, digits and / _ : . -",
            valid="e.g. BTC/USDT, BTC-USDT, BTC_USDT, BTC/USDT:USDT or the exchange's id BTCUSDT",
        )
    return text


class SymbolIndex:
    """Case-insensitive look-ups over one exchange's markets, built once per markets load."""

    def __init__(self, markets: Mapping[str, Mapping[str, Any]]) -> None:
        self._markets = markets
        self._by_symbol: dict[str, str] = {}
        self._by_id: dict[str, str] = {}
        for symbol, market in markets.items():
            self._by_symbol.setdefault(symbol.upper(), symbol)
            for field in ("id", "altname", "wsId"):
                name = market.get(field)
                if not isinstance(name, str) or not name:
                    continue
                held = self._by_id.get(name.upper())
                if held is None or (market.get("spot") and not markets[held].get("spot")):
                    self._by_id[name.upper()] = symbol

    def resolve(self, exchange_id: str, raw: str) -> Mapping[str, Any]:
        """The market ``raw`` names, or :class:`UnknownMarket` with a few close names."""
        text = validate_symbol_text(raw)
        if text in self._markets:
            return self._markets[text]
        upper = text.upper()
        for candidate in _spellings(upper):
            symbol = self._by_symbol.get(candidate)
            if symbol is not None:
                return self._markets[symbol]
        symbol = self._by_id.get(upper)
        if symbol is not None:
            return self._markets[symbol]
        for candidate in _spellings(upper):
            symbol = self._by_id.get(candidate)
            if symbol is not None:
                return self._markets[symbol]
        close = difflib.get_close_matches(
            _spellings(upper)[-1], list(self._by_symbol), n=3, cutoff=0.75
        )
        raise UnknownMarket(
            f"{exchange_id} has no market {text!r}",
            extra={"suggestions": [self._by_symbol[c] for c in close]},
        )

    def __len__(self) -> int:
        return len(self._markets)


def _spellings(upper: str) -> list[str]:
    """``upper`` as typed, then with its first separator read as the base/quote slash."""
    if "/" in upper:
        return [upper]
    pair, colon, settle = upper.partition(":")
    return [upper, _SEPARATOR.sub("/", pair, count=1) + colon + settle]
