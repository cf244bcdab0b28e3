"""What the warmer keeps warm: ``WARM_TARGETS``, parsed once into typed targets.

Either ``exchange:SYMBOL,SYMBOL@1m,1h`` items separated by spaces or semicolons, or a JSON
list of ``{"exchange", "symbols", "timeframes"}`` objects; a kind after ``@`` (``orderbook``,
``trades``, ``funding``) warms that kind instead of candles of a timeframe.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from market_proxy.keys import DemandKey, Kind, MarketKey, SeriesKey
from market_proxy.settings import SettingsError

_KINDS = frozenset(kind.value for kind in Kind)
_TARGET = re.compile(r"^(?P<exchange>[a-z0-9]+):(?P<symbols>[^@\s]+)(?:@(?P<timeframes>[^\s]+))?$")


@dataclass(frozen=True, slots=True)
class Target:
    """An exchange with the symbols, and the timeframes of their candles, to keep warm."""

    exchange: str
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...] = ()

    def demand_keys(self) -> list[DemandKey]:
        """The keys this target names, symbols as written (the service makes them canonical):
        each symbol's ticker, and its candles of each timeframe or its other kinds of data
        (``orderbook``, ``trades``, ``funding``) listed after ``@``."""
        keys: list[DemandKey] = []
        for symbol in self.symbols:
            keys.append(MarketKey(Kind.TICKER, self.exchange, symbol))
            for also in self.timeframes:
                if also in _KINDS:
                    keys.append(MarketKey(Kind(also), self.exchange, symbol))
                else:
                    keys.append(SeriesKey(self.exchange, symbol, also))
        return list(dict.fromkeys(keys))


def parse_targets(text: str) -> list[Target]:
    """Targets from ``WARM_TARGETS``.

    Compact form, targets separated by spaces or semicolons:
    ``binance:BTC/USDT,ETH/USDT@1m,1h kraken:BTC/USD@1h`` (``@timeframes`` optional).
    Or JSON: ``[{"exchange": "binance", "symbols": ["BTC/USDT"], "timeframes": ["1m"]}]``.
    Raises :class:`SettingsError` saying which target is malformed and why.
    """
    text = text.strip()
    if not text:
        return []
    if text.startswith(("[", "{")):
        return _from_json(text)
    targets = []
    for part in re.split(r"[;\s]+", text):
        if not part:
            continue
        match = _TARGET.match(part)
        if match is None:
            raise SettingsError(
                f"WARM_TARGETS: {part!r} is not exchange:SYMBOL[,SYMBOL…][@timeframe[,timeframe…]]"
            )
        targets.append(
            Target(
                exchange=match["exchange"],
                symbols=_split(match["symbols"]),
                timeframes=_split(match["timeframes"] or ""),
            )
        )
    return targets


def _from_json(text: str) -> list[Target]:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise SettingsError(f"WARM_TARGETS is not valid JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise SettingsError("WARM_TARGETS as JSON must be a list of targets")
    targets = []
    for index, item in enumerate(raw):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("exchange"), str)
            or not _strings(item.get("symbols"))
            or not _strings(item.get("timeframes", []), empty_ok=True)
        ):
            raise SettingsError(
                f"WARM_TARGETS[{index}] needs exchange (text), symbols (list of text) and "
                "optionally timeframes (list of text)"
            )
        targets.append(
            Target(item["exchange"], tuple(item["symbols"]), tuple(item.get("timeframes", [])))
        )
    return targets


def _strings(value: object, *, empty_ok: bool = False) -> bool:
    return (
        isinstance(value, list)
        and (empty_ok or bool(value))
        and all(isinstance(v, str) and v for v in value)
    )


def _split(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
