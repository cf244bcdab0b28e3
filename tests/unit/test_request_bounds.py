"""Bounds on what one request may ask for, checked in the API layer before any work."""

from __future__ import annotations

import re

import pytest

from market_proxy.api.params import parse_time, symbol_list
from market_proxy.api.streaming import limits
from market_proxy.errors import InvalidParameter
from market_proxy.settings import Settings
from market_proxy.streams import EVENT_ID_PATTERN, MAX_EVENT_ID_LENGTH, MAX_SYMBOLS, _event_id


@pytest.mark.parametrize(
    ("text", "stamp"),
    [
        ("1704067200000", 1_704_067_200_000),
        ("0", 0),
        ("9999999999999", 9_999_999_999_999),
        ("2024-01-01T00:00:00Z", 1_704_067_200_000),
        ("2024-01-01T01:00:00+01:00", 1_704_067_200_000),
        ("2024-01-01T00:00Z", 1_704_067_200_000),
        ("2024-01-01T00:00:00.5Z", 1_704_067_200_500),
        ("", None),
    ],
)
def test_times_are_epoch_milliseconds_or_iso_8601_with_a_zone(text: str, stamp: int | None) -> None:
    assert parse_time("since", text) == stamp


def test_epoch_seconds_are_refused_with_the_milliseconds_they_would_be() -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_time("since", "1700000000")
    assert caught.value.status == 400
    assert caught.value.extra["parameter"] == "since"
    assert "1700000000000" in caught.value.detail
    assert "1700000000000" in caught.value.extra["valid"]
    assert parse_time("since", "94694400000") == 94_694_400_000  # 1973 in ms is taken as is


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2024-01-01T00:00:00",  # no zone
        "2024-01-01",
        "10000000000000",  # 14 digits: the year 2286 and later
        "-1",
        "1969-12-31T23:59:59Z",
        "2024-02-30T00:00:00Z",  # no such day
        "²",  # a digit to str.isdigit, not to int(): once a 500
        "١٧٠٤٠٦٧٢٠٠٠٠٠",  # Arabic-Indic digits, which int() would read
        " 1704067200000",
        "1704067200000\n",
    ],
)
def test_anything_else_is_a_400_naming_the_parameter_and_what_is_valid(text: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_time("until", text)
    assert caught.value.status == 400
    assert caught.value.extra["parameter"] == "until"
    assert "2024-01-01T00:00:00Z" in caught.value.extra["valid"]


def test_a_stream_interval_outside_the_configured_bounds_is_a_400_listing_them() -> None:
    settings = Settings(stream_min_interval_seconds=0.5, stream_max_interval_seconds=60)
    assert limits(settings, 0.5).interval_s == 0.5
    assert limits(settings, 60).interval_s == 60
    for outside in (0.49, 60.01, float("nan"), float("inf")):
        with pytest.raises(InvalidParameter) as caught:
            limits(settings, outside)
        assert caught.value.extra == {"parameter": "interval", "valid": "0.5..60.0"}


def test_a_symbol_list_ignores_spaces_and_empty_items_and_names_each_market_once() -> None:
    assert symbol_list(" BTC/USDT , eth-usdt,,BTC/USDT, ", MAX_SYMBOLS) == ["BTC/USDT", "eth-usdt"]


@pytest.mark.parametrize("count", [0, MAX_SYMBOLS + 1])
def test_a_symbol_list_holds_one_to_max_symbols(count: int) -> None:
    with pytest.raises(InvalidParameter) as caught:
        symbol_list(",".join(f"S{i}/USDT" for i in range(count)), MAX_SYMBOLS)
    assert caught.value.extra == {"parameter": "symbols", "valid": f"1..{MAX_SYMBOLS}"}


def test_repeats_count_toward_the_bound_of_a_symbol_list() -> None:
    assert symbol_list(",".join(["BTC/USDT"] * MAX_SYMBOLS), MAX_SYMBOLS) == ["BTC/USDT"]
    with pytest.raises(InvalidParameter):
        symbol_list(",".join(["BTC/USDT"] * (MAX_SYMBOLS + 1)), MAX_SYMBOLS)


def test_the_longest_event_id_the_service_sends_fits_the_documented_bounds() -> None:
    longest = _event_id(["0123abcd"] * MAX_SYMBOLS)
    assert len(longest) == MAX_EVENT_ID_LENGTH
    assert re.fullmatch(EVENT_ID_PATTERN.strip("^$"), longest)
    assert re.fullmatch(EVENT_ID_PATTERN.strip("^$"), _event_id([None, "0123abcd"]))
