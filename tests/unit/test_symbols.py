import random
import re
from collections.abc import Mapping

import pytest

from market_proxy import symbols
from market_proxy.errors import InvalidParameter, UnknownMarket
from market_proxy.symbols import (
    MAX_COMPARISONS,
    MAX_POSTINGS_READ,
    MAX_SYMBOL_LENGTH,
    SYMBOL_PATTERN,
    Suggestions,
    SymbolIndex,
    _spellings,
    validate_symbol_text,
)
from tests.perf.suggestions import over_every_market, synthetic_markets, typo

BINANCE = SymbolIndex(
    {
        "BTC/USDT:USDT": {"id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "spot": False},
        "BTC/USDT": {"id": "BTCUSDT", "symbol": "BTC/USDT", "spot": True},
        "ETH/USDT": {"id": "ETHUSDT", "symbol": "ETH/USDT", "spot": True},
        "1000SHIB/USDT": {"id": "1000SHIBUSDT", "symbol": "1000SHIB/USDT", "spot": True},
        "BTC/USDT:USDT-250328": {
            "id": "BTCUSDT_250328",
            "symbol": "BTC/USDT:USDT-250328",
            "spot": False,
        },
    }
)
KRAKEN = SymbolIndex(
    {
        "BTC/USDT": {
            "id": "XBTUSDT",
            "symbol": "BTC/USDT",
            "spot": True,
            "altname": "XBTUSDT",
            "wsId": "XBT/USDT",
        },
        "BTC/USD": {
            "id": "XXBTZUSD",
            "symbol": "BTC/USD",
            "spot": True,
            "altname": "XBTUSD",
            "wsId": "XBT/USD",
        },
    }
)


@pytest.mark.parametrize(
    ("typed", "symbol"),
    [
        ("BTC/USDT", "BTC/USDT"),
        ("btc/usdt", "BTC/USDT"),
        ("BTC-USDT", "BTC/USDT"),
        ("btc_usdt", "BTC/USDT"),
        ("BTCUSDT", "BTC/USDT"),
        ("btcusdt", "BTC/USDT"),
        ("BTC/USDT:USDT", "BTC/USDT:USDT"),
        ("btc-usdt:usdt", "BTC/USDT:USDT"),
        ("1000shib-usdt", "1000SHIB/USDT"),
        ("BTC/USDT:USDT-250328", "BTC/USDT:USDT-250328"),
        ("btcusdt_250328", "BTC/USDT:USDT-250328"),
    ],
)
def test_every_accepted_spelling_resolves_to_the_canonical_market(typed: str, symbol: str) -> None:
    assert BINANCE.resolve("binance", typed)["symbol"] == symbol


def test_a_shared_exchange_id_resolves_to_the_spot_market() -> None:
    assert BINANCE.resolve("binance", "BTCUSDT")["spot"] is True


def test_the_exchanges_own_id_resolves_where_it_differs_from_the_symbol() -> None:
    assert KRAKEN.resolve("kraken", "XBTUSDT")["symbol"] == "BTC/USDT"
    assert KRAKEN.resolve("kraken", "btc-usdt")["id"] == "XBTUSDT"


@pytest.mark.parametrize("typed", ["XXBTZUSD", "XBTUSD", "xbt/usd", "XBT-USD", "btc/usd"])
def test_an_exchanges_other_names_for_a_market_resolve(typed: str) -> None:
    assert KRAKEN.resolve("kraken", typed)["symbol"] == "BTC/USD"


def test_an_unknown_market_is_a_404_with_close_suggestions() -> None:
    with pytest.raises(UnknownMarket) as caught:
        BINANCE.resolve("binance", "BTC-USDC")
    assert caught.value.status == 404
    assert "BTC/USDT" in caught.value.extra["suggestions"]


@pytest.mark.parametrize(
    "typed",
    [
        "",
        " ",
        "BTC USDT",
        "BTC/USDT;drop",
        "<script>",
        "A" * (MAX_SYMBOL_LENGTH + 1),
        "/BTC",
        " BTC/USDT",
        "BTC/USDT\n",
        "BTC/USDT\t",
        "BTC/ÜSDT",
        "BTC%2FUSDT",
    ],
)
def test_text_that_cannot_name_a_market_is_a_400(typed: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        BINANCE.resolve("binance", typed)
    assert caught.value.status == 400
    assert caught.value.extra["parameter"] == "symbol"
    assert "BTC/USDT" in caught.value.extra["valid"]


def test_the_longest_symbol_text_is_looked_up_not_refused() -> None:
    with pytest.raises(UnknownMarket):
        BINANCE.resolve("binance", "A" * MAX_SYMBOL_LENGTH)


@pytest.mark.parametrize("typed", ["BTC/USDT", "A" * MAX_SYMBOL_LENGTH, "1000SHIB_USDT:USDT-1.5"])
def test_the_documented_pattern_accepts_what_the_service_accepts(typed: str) -> None:
    assert validate_symbol_text(typed) == typed
    assert re.fullmatch(SYMBOL_PATTERN.removeprefix("^").removesuffix("$"), typed)


@pytest.mark.parametrize("typed", ["", "-BTC", "A" * (MAX_SYMBOL_LENGTH + 1), "BTC\n"])
def test_the_documented_pattern_refuses_what_the_service_refuses(typed: str) -> None:
    with pytest.raises(InvalidParameter):
        validate_symbol_text(typed)
    assert not re.fullmatch(SYMBOL_PATTERN.removeprefix("^").removesuffix("$"), typed)


SPOT_ONLY = SymbolIndex(
    {
        "BTC/USDT": {"id": "BTCUSDT", "symbol": "BTC/USDT", "spot": True},
        "ETH/USDT": {"id": "ETHUSDT", "symbol": "ETH/USDT", "spot": True},
        "ETH/USDC": {"id": "ETHUSDC", "symbol": "ETH/USDC", "spot": True},
    }
)


def suggestions(index: SymbolIndex, typed: str) -> list[str]:
    with pytest.raises(UnknownMarket) as caught:
        index.resolve("exchange", typed)
    found: list[str] = caught.value.extra["suggestions"]
    return found


@pytest.fixture(scope="module")
def twenty_thousand() -> SymbolIndex:
    """A snapshot of 20,000 markets: spot, perpetuals and dated futures of many bases."""
    return SymbolIndex(synthetic_markets(20_000))


TYPICAL_TYPOS = [
    ("BTC/USDTT", "BTC/USDT"),  # a doubled letter
    ("btcusdtt", "BTC/USDT"),  # the id, with a slip
    ("BTC-USTD", "BTC/USDT"),  # two letters swapped
    ("ETH-USD", "ETH/USDT"),  # a quote the venue lacks
    ("BTC/USDT:USDTT", "BTC/USDT:USDT"),  # the perpetual, with a slip
    ("SOL_USDD", "SOL/USDT"),
    ("XBT/USDD", "BTC/USD"),  # Kraken's name for the market, with a slip
]


@pytest.mark.parametrize(("typed", "meant"), TYPICAL_TYPOS)
def test_a_typical_typo_is_answered_with_the_market_meant_among_many(
    twenty_thousand: SymbolIndex, typed: str, meant: str
) -> None:
    assert meant in suggestions(twenty_thousand, typed)


@pytest.mark.parametrize(
    ("index", "typed", "meant"),
    [
        (BINANCE, "BTC/USDTT", "BTC/USDT"),
        (BINANCE, "btcusdtt", "BTC/USDT"),
        (BINANCE, "ETH-USD", "ETH/USDT"),
        (BINANCE, "BTC/USDT:USDTT", "BTC/USDT:USDT"),
        (KRAKEN, "XBT/USDD", "BTC/USD"),
        (KRAKEN, "XBTUSDD", "BTC/USD"),
        (SPOT_ONLY, "BTC/USDT:USDT", "BTC/USDT"),  # a perpetual where there is none
    ],
)
def test_a_typical_typo_is_answered_with_the_market_meant(
    index: SymbolIndex, typed: str, meant: str
) -> None:
    found = suggestions(index, typed)
    assert found[0] == meant
    assert len(found) == len(set(found)) <= 3, "each market once, three at most"


@pytest.mark.parametrize(
    "typed",
    [
        "BTC/USDTT",
        "USDT/USDTT",  # every trigram common: many more candidates than compared
        "A",
        "A" * MAX_SYMBOL_LENGTH,
        "ZZZZ/ZZZZ",  # nothing alike
        "0000/USDT:USDT-250101",
    ],
)
def test_a_look_up_among_twenty_thousand_markets_compares_a_bounded_number_of_names(
    twenty_thousand: SymbolIndex, typed: str
) -> None:
    lookup = twenty_thousand.suggestions.look_up(typed)
    assert lookup.comparisons <= MAX_COMPARISONS
    assert lookup.postings_read <= MAX_POSTINGS_READ


def test_the_bound_holds_where_far_more_names_are_alike(twenty_thousand: SymbolIndex) -> None:
    # Half the markets share this quote's trigrams: both bounds are what limit the look-up.
    lookup = twenty_thousand.suggestions.look_up("USDT/USDTT")
    assert lookup.postings_read == MAX_POSTINGS_READ
    assert lookup.candidates > 2 * MAX_COMPARISONS
    assert lookup.comparisons == MAX_COMPARISONS


def test_the_suggestions_match_difflib_over_every_market_for_typos_of_real_names() -> None:
    # Given 1,000 markets and one-letter slips of 120 of their symbols that are a 404,
    markets = synthetic_markets(1_000)
    index = SymbolIndex(markets)
    chooser = random.Random(4)
    missed = []
    for meant in chooser.sample(sorted(markets), 120):
        typed = typo(meant, chooser)
        try:
            index.resolve("exchange", typed)
            continue  # a dropped slash is the market's id: it resolves
        except UnknownMarket as unknown:
            found = unknown.extra["suggestions"]
        before = over_every_market(markets, _spellings(typed.upper())[-1])
        # then the index suggests the market meant wherever difflib over all of them did.
        if meant in before and meant not in found:
            missed.append((typed, meant, found, before))
    assert not missed


def test_the_index_is_built_once_per_snapshot_at_its_first_unknown_symbol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[Suggestions] = []

    class Counted(Suggestions):
        def __init__(self, names: Mapping[str, str]) -> None:
            super().__init__(names)
            built.append(self)

    monkeypatch.setattr(symbols, "Suggestions", Counted)
    markets = synthetic_markets(500)
    snapshot = SymbolIndex(markets)
    snapshot.resolve("exchange", "BTC/USDT")
    assert not built, "a snapshot that is never asked for an unknown symbol builds nothing"
    for typed in ("BTC/USDTT", "ETH-USD", "NOPE"):
        with pytest.raises(UnknownMarket):
            snapshot.resolve("exchange", typed)
    assert len(built) == 1
    assert snapshot.suggestions is built[0]
    with pytest.raises(UnknownMarket):
        SymbolIndex(markets).resolve("exchange", "BTC/USDTT")  # the next snapshot: its own
    assert len(built) == 2
