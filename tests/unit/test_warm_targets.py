import pytest

from market_proxy.settings import SettingsError
from market_proxy.warm_targets import Target, parse_targets


def test_the_compact_form_lists_exchanges_symbols_and_timeframes() -> None:
    assert parse_targets("binance:BTC/USDT,ETH/USDT@1m,1h  kraken:BTC/USD;okx:ETH-USDT") == [
        Target("binance", ("BTC/USDT", "ETH/USDT"), ("1m", "1h")),
        Target("kraken", ("BTC/USD",), ()),
        Target("okx", ("ETH-USDT",), ()),
    ]


def test_the_json_form_says_the_same() -> None:
    text = '[{"exchange": "binance", "symbols": ["BTC/USDT"], "timeframes": ["1m"]}]'
    assert parse_targets(text) == [Target("binance", ("BTC/USDT",), ("1m",))]


def test_no_targets_is_allowed() -> None:
    assert parse_targets("  ") == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("binance", "exchange:SYMBOL"),
        ("binance:@1m", "exchange:SYMBOL"),
        ("Binance BTC/USDT", "exchange:SYMBOL"),
        ("[{]", "not valid JSON"),
        ('{"exchange": "binance"}', "not valid JSON|must be a list"),
        ('[{"exchange": "binance", "symbols": []}]', r"WARM_TARGETS\[0\]"),
        ('[{"exchange": "binance", "symbols": ["A/B"], "timeframes": "1m"}]', r"WARM_TARGETS\[0\]"),
    ],
)
def test_a_malformed_target_list_is_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        parse_targets(text)


def test_a_target_may_name_other_kinds_of_data_beside_timeframes() -> None:
    from market_proxy.keys import Kind, MarketKey, SeriesKey

    (target,) = parse_targets("binance:BTC/USDT@orderbook,1m,funding")
    assert target.demand_keys() == [
        MarketKey(Kind.TICKER, "binance", "BTC/USDT"),
        MarketKey(Kind.ORDERBOOK, "binance", "BTC/USDT"),
        SeriesKey("binance", "BTC/USDT", "1m"),
        MarketKey(Kind.FUNDING, "binance", "BTC/USDT"),
    ]
