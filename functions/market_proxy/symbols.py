"""Turning what a client typed into one of the exchange's markets.

Accepted, in any case: the canonical ccxt symbol (``BTC/USDT``, ``BTC/USDT:USDT``), the same
with ``-`` or ``_`` between base and quote (``btc-usdt``, ``BTC_USDT:USDT``), and the
exchange's own market id (``BTCUSDT``, ``XBTUSDT``). Where one id names several markets
(Binance uses ``BTCUSDT`` for spot and for the perpetual), the spot market wins; the
settlement suffix selects the derivative.
"""

from __future__ import annotations

import difflib
import heapq
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from market_proxy.errors import InvalidParameter, UnknownMarket

MAX_SYMBOL_LENGTH = 64
# A letter or digit, then letters, digits and / _ : . - ; length included. The OpenAPI
# document states the same expression (Python and ECMA-262 read it alike).
SYMBOL_TEXT = f"[A-Za-z0-9][A-Za-z0-9/_:.-]{{0,{MAX_SYMBOL_LENGTH - 1}}}"
SYMBOL_PATTERN = f"^{SYMBOL_TEXT}$"
_ALLOWED = re.compile(SYMBOL_TEXT)
_SEPARATOR = re.compile(r"[-_]")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
# What one unknown symbol may cost, whatever the exchange's market count: postings read to
# gather candidates, then names compared with difflib (the part that costs).
MAX_POSTINGS_READ = 1000
MAX_COMPARISONS = 200
_SUGGESTIONS, _CUTOFF = 3, 0.75


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


# Texts a markets snapshot remembers the resolution of (about a megabyte at most).
_REMEMBERED = 10_000


class SymbolIndex:
    """Case-insensitive look-ups over one exchange's markets, built once per markets load."""

    def __init__(self, markets: Mapping[str, Mapping[str, Any]]) -> None:
        self._markets = markets
        self._by_symbol: dict[str, str] = {}
        self._by_id: dict[str, str] = {}
        self._resolved: dict[str, str] = {}
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
        """The market ``raw`` names, or :class:`UnknownMarket` with a few close names.

        What a text resolved to is remembered (up to ``_REMEMBERED`` texts a snapshot,
        failures never): a client asks for the same few markets, spelled the same way."""
        symbol = self._resolved.get(raw)
        if symbol is not None:
            return self._markets[symbol]
        market = self._look_up(exchange_id, raw)
        if len(self._resolved) < _REMEMBERED:
            self._resolved[raw] = market["symbol"]
        return market

    def _look_up(self, exchange_id: str, raw: str) -> Mapping[str, Any]:
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
        raise UnknownMarket(
            f"{exchange_id} has no market {text!r}",
            extra={"suggestions": self.suggestions.look_up(_spellings(upper)[-1]).symbols},
        )

    @cached_property
    def suggestions(self) -> Suggestions:
        """The index behind a 404's suggestions: built at this snapshot's first unknown
        symbol, then kept as long as the snapshot is."""
        names: dict[str, str] = {}
        for upper, symbol in self._by_symbol.items():
            names.setdefault(upper, symbol)
        for upper, symbol in self._by_id.items():
            names.setdefault(upper, symbol)
        return Suggestions(names)

    def __len__(self) -> int:
        return len(self._markets)


class Suggestions:
    """Close names for a symbol no market has, at a cost bounded whatever the market count.

    Every name of a market (its symbol, its exchange id and other names, upper case) is
    indexed two ways: by its base, and by the bases one letter away (a letter swapped,
    doubled or dropped, which trigrams of a short base miss); and by the trigrams of its
    letters and digits, separators left out, so that ``BTCUSDTT`` and ``XBT/USDD`` find
    ``BTCUSDT`` and ``XBTUSD``. A look-up reads at most ``MAX_POSTINGS_READ`` postings (the
    base's, then the rarest trigrams' first), ranks the names found (a near base with the
    same quote first, then by trigrams shared) and compares at most ``MAX_COMPARISONS`` of
    them with what was typed as :func:`difflib.get_close_matches` would (same cutoff). Each
    market is suggested once, by its symbol, closest first.
    """

    def __init__(self, names: Mapping[str, str]) -> None:
        # One entry per compact form: BTC/USDT and BTCUSDT share their trigrams.
        self._forms: list[list[tuple[str, str]]] = []
        self._sizes: list[int] = []  # trigrams of each form
        self._quotes: list[str] = []  # what follows the base in the form's symbol, compact
        self._grams: defaultdict[str, list[int]] = defaultdict(list)
        self._bases: defaultdict[str, list[int]] = defaultdict(list)
        at: dict[str, int] = {}
        for name, symbol in names.items():
            form = _compact(name)
            index = at.get(form)
            if index is None:
                index = at[form] = len(self._forms)
                grams = _trigrams(form)
                self._forms.append([])
                self._sizes.append(len(grams))
                self._quotes.append("")
                for gram in grams:
                    self._grams[gram].append(index)
            self._forms[index].append((name, symbol))
            base, slash, quote = name.partition("/")
            if slash and not self._quotes[index]:
                self._quotes[index] = _compact(quote)
                self._bases[_compact(base)].append(index)
        self._near: defaultdict[str, list[str]] = defaultdict(list)
        for base in self._bases:
            for key in _one_letter_less(base) | {base}:
                self._near[key].append(base)

    def look_up(self, typed: str) -> Lookup:
        """Up to three symbols whose names are close to ``typed`` (upper case, with its
        base/quote slash if it had a separator), and what finding them cost."""
        budget = MAX_POSTINGS_READ
        near_base: dict[int, bool] = {}  # form → whether its quote is the one typed
        base, slash, quote = typed.partition("/")
        if slash:
            base, quote = _compact(base), _compact(quote)
            for key in _one_letter_less(base) | {base}:
                for other in self._near.get(key, ())[:budget]:
                    budget -= 1
                    for index in self._bases[other][:budget]:
                        budget -= 1
                        near_base[index] = self._quotes[index] == quote
        grams = _trigrams(_compact(typed))
        shared: dict[int, int] = {}
        for gram in sorted(grams, key=lambda g: len(self._grams.get(g, ()))):
            if budget <= 0:
                break
            postings = self._grams.get(gram, ())[:budget]
            budget -= len(postings)
            for index in postings:
                shared[index] = shared.get(index, 0) + 1

        def rank(index: int) -> float:
            same = near_base.get(index)
            dice = shared.get(index, 0) / (self._sizes[index] + len(grams))
            return dice + (0 if same is None else 2 if same else 1)

        matcher = difflib.SequenceMatcher()
        matcher.set_seq2(typed)  # the side difflib caches
        best: dict[str, float] = {}
        compared = 0
        found = near_base.keys() | shared.keys()
        for index in heapq.nlargest(MAX_COMPARISONS, found, key=rank):
            for name, symbol in self._forms[index]:
                if compared == MAX_COMPARISONS:
                    break
                compared += 1
                matcher.set_seq1(name)
                if (
                    matcher.real_quick_ratio() >= _CUTOFF
                    and matcher.quick_ratio() >= _CUTOFF
                    and (ratio := matcher.ratio()) >= _CUTOFF
                    and ratio > best.get(symbol, 0.0)
                ):
                    best[symbol] = ratio
        closest = heapq.nlargest(_SUGGESTIONS, best, key=lambda symbol: (best[symbol], symbol))
        return Lookup(closest, MAX_POSTINGS_READ - budget, len(found), compared)


@dataclass(frozen=True, slots=True)
class Lookup:
    """Suggestions for one unknown symbol, and what finding them cost."""

    symbols: list[str]
    postings_read: int
    candidates: int  # names' forms that share a trigram with what was typed
    comparisons: int  # difflib ratios taken


def _spellings(upper: str) -> list[str]:
    """``upper`` as typed, then with its first separator read as the base/quote slash."""
    if "/" in upper:
        return [upper]
    pair, colon, settle = upper.partition(":")
    return [upper, _SEPARATOR.sub("/", pair, count=1) + colon + settle]


def _compact(upper: str) -> str:
    return _NOT_ALNUM.sub("", upper)


def _one_letter_less(base: str) -> set[str]:
    return {base[:i] + base[i + 1 :] for i in range(len(base))} if len(base) > 1 else set()


def _trigrams(form: str) -> set[str]:
    """The three-character windows of ``form`` marked at both ends (short forms have some)."""
    padded = f"^{form}$"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}
