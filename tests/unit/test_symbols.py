import re

import pytest

from market_proxy.errors import InvalidParameter, UnknownMarket
from market_proxy.symbols import (
    MAX_SYMBOL_LENGTH,
    SYMBOL_PATTERN,
    SymbolIndex,
    validate_symbol_text,
)

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
