"""The 404 for an unknown symbol: what suggesting close names costs at 4,000 and 20,000
markets, difflib over every market (as before) against the per-snapshot trigram index, and
whether the index suggests the market meant as often, for typos made from real names.

Pure CPU, no stack needed: ``python -m tests.perf.suggestions`` runs it alone.
"""

from __future__ import annotations

import difflib
import random
import re
import string
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from market_proxy.errors import UnknownMarket
from market_proxy.symbols import MAX_COMPARISONS, SymbolIndex
from tests.perf.report import Report, Spread
from tests.perf.stack import Stack

TITLE = "Suggestions for an unknown symbol (404)"
SIZES = (4_000, 20_000)
TYPOS = 300  # made from real names, per size
# Typed as clients do: a doubled letter, the id without a separator, a quote the venue lacks.
TYPICAL = ("BTC/USDTT", "btcusdtt", "ETH-USD", "XBT/USDD", "BTC/USDT:USDTT", "SOL_USDD")
QUOTES = ("USDT",) * 6 + ("USDC", "USDC", "FDUSD", "BTC", "ETH", "EUR", "TRY", "BNB")
MAJORS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "1000SHIB", "LINK", "AVAX", "DOT")


def synthetic_markets(count: int, *, seed: int = 7) -> dict[str, dict[str, Any]]:
    """``count`` ccxt-like markets: spot pairs, linear perpetuals and dated futures of many
    bases in a few quotes, ids as Binance writes them (and Kraken-like names for some)."""
    chooser = random.Random(seed)
    markets: dict[str, dict[str, Any]] = {}
    bases = list(MAJORS)

    def add(symbol: str, market_id: str, spot: bool, **more: str) -> None:
        markets.setdefault(symbol, {"id": market_id, "symbol": symbol, "spot": spot, **more})

    for base in MAJORS:  # the markets typos are aimed at
        for quote in ("USDT", "USDC", "BTC", "EUR"):
            if base != quote:
                add(f"{base}/{quote}", f"{base}{quote}", True)
        add(f"{base}/USDT:USDT", f"{base}USDT", False)
    add("BTC/USD", "XXBTZUSD", True, altname="XBTUSD", wsId="XBT/USD")
    while len(markets) < count:
        if chooser.random() < 0.3 or len(bases) < 50:
            length = chooser.choice((3, 3, 4, 4, 4, 5, 6, 7))
            bases.append("".join(chooser.choices(string.ascii_uppercase + "0", k=length)))
        base, quote = chooser.choice(bases), chooser.choice(QUOTES)
        if base == quote:
            continue
        kind = chooser.random()
        if kind < 0.6:
            add(f"{base}/{quote}", f"{base}{quote}", True)
        elif kind < 0.9:
            add(f"{base}/{quote}:{quote}", f"{base}{quote}", False)
        else:
            expiry = f"25{chooser.randint(1, 12):02d}{chooser.randint(1, 28):02d}"
            add(f"{base}/{quote}:{quote}-{expiry}", f"{base}{quote}_{expiry}", False)
    return dict(list(markets.items())[:count])


def typo(symbol: str, chooser: random.Random) -> str:
    """``symbol`` with one slip: a letter doubled, dropped or swapped with the next."""
    at = chooser.randrange(len(symbol) - 1)
    slip = chooser.randrange(3)
    if slip == 0:
        return symbol[:at] + symbol[at] + symbol[at:]
    if slip == 1:
        return symbol[:at] + symbol[at + 1 :]
    return symbol[:at] + symbol[at + 1] + symbol[at] + symbol[at + 2 :]


def over_every_market(markets: Mapping[str, Any], typed: str) -> list[str]:
    """The suggestions as made before the index: difflib over every symbol, upper case."""
    by_upper = {symbol.upper(): symbol for symbol in markets}
    close = difflib.get_close_matches(typed, list(by_upper), n=3, cutoff=0.75)
    return [by_upper[name] for name in close]


def with_index(index: SymbolIndex) -> Callable[[str], list[str]]:
    def suggest(typed: str) -> list[str]:
        try:
            index.resolve("bench", typed)
        except UnknownMarket as unknown:
            suggested: list[str] = unknown.extra["suggestions"]
            return suggested
        return []

    return suggest


def _timed_side_by_side(
    before: Callable[[str], list[str]], after: Callable[[str], list[str]], typed: list[str]
) -> tuple[Spread, Spread, list[list[str]], list[list[str]]]:
    """Both ways for each text in turn, so that a machine's load falls on both alike."""
    seconds: tuple[list[float], list[float]] = ([], [])
    answers: tuple[list[list[str]], list[list[str]]] = ([], [])
    for text in typed:
        for way, suggest in enumerate((before, after)):
            started = time.perf_counter()
            answers[way].append(suggest(text))
            seconds[way].append(time.perf_counter() - started)
    return Spread.of(seconds[0]), Spread.of(seconds[1]), answers[0], answers[1]


def _spelled(text: str) -> str:
    """What the service compares: upper case, the first separator read as a slash."""
    upper = text.upper()
    if "/" in upper:
        return upper
    pair, colon, settle = upper.partition(":")
    return re.sub(r"[-_]", "/", pair, count=1) + colon + settle


def _before(markets: Mapping[str, Any], text: str) -> list[str]:
    return over_every_market(markets, _spelled(text))


def _resolves(index: SymbolIndex, text: str) -> bool:
    try:
        index.resolve("bench", text)
    except UnknownMarket:
        return False
    return True


def run(stack: Stack | None = None) -> Report:
    report = Report(TITLE)
    per_size: list[float] = []
    for size in SIZES:
        markets = synthetic_markets(size)
        chooser = random.Random(size)
        aimed = [
            (typo(symbol, chooser), symbol) for symbol in chooser.sample(sorted(markets), TYPOS)
        ]
        started = time.perf_counter()
        SymbolIndex(markets).suggestions  # noqa: B018  (built once per snapshot, at its first 404)
        built_ms = (time.perf_counter() - started) * 1000
        index = SymbolIndex(markets)
        # Only slips that are a 404: a dropped slash, say, is the market's id and resolves.
        aimed = [(text, symbol) for text, symbol in aimed if not _resolves(index, text)]
        typed = [*TYPICAL, *(text for text, _ in aimed)]
        old, new, old_answers, new_answers = _timed_side_by_side(
            partial(_before, markets), with_index(index), typed
        )
        comparisons = max(index.suggestions.look_up(_spelled(t)).comparisons for t in typed)
        hits_old = sum(m in a for (_, m), a in zip(aimed, old_answers[len(TYPICAL) :], strict=True))
        hits_new = sum(m in a for (_, m), a in zip(aimed, new_answers[len(TYPICAL) :], strict=True))
        per_size.append(new.p50)
        report.figure(old.line(f"{size:>6} markets, difflib over all"))
        report.figure(
            new.line(f"{size:>6} markets, index", f"(index built once: {built_ms:.0f} ms)")
        )
        report.figure(
            f"{size:>6} markets: market meant among the suggestions for {len(aimed)} typos: "
            f"difflib {hits_old}, index {hits_new}; most names compared {comparisons}"
        )
        report.target(f"{size} markets: names compared per look-up", comparisons, MAX_COMPARISONS)
        report.target(
            f"{size} markets: typos the index misses over difflib", hits_old - hits_new, 0
        )
    report.target(f"{SIZES[-1]} markets: index p50 / difflib p50", new.p50 / old.p50, 0.25)
    report.target(
        f"index p50, {SIZES[-1]} / {SIZES[0]} markets (difflib: x{SIZES[-1] // SIZES[0]})",
        per_size[-1] / per_size[0],
        2.0,
    )
    return report


if __name__ == "__main__":
    result = run()
    for line in [*result.figures, *(target.line() for target in result.targets)]:
        print(line)
