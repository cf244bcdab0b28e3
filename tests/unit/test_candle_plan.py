import pytest

from market_proxy.candles import plan
from market_proxy.errors import InvalidParameter
from market_proxy.settings import Settings

MIN = 60_000
NOW = 1_700_000_123_456  # inside the candle that opened at 1_700_000_100_000
OPEN = NOW // MIN * MIN
SETTINGS = Settings(ohlcv_default_limit=100, ohlcv_max_candles=20_000)


def planned(**kwargs: int | None) -> tuple[int, int]:
    query = plan(
        timeframe="1m",
        tf_ms=MIN,
        since=kwargs.get("since"),
        until=kwargs.get("until"),
        limit=kwargs.get("limit"),
        now=NOW,
        settings=SETTINGS,
    )
    return query.start, query.end


def test_no_parameters_gives_the_latest_default_count_with_the_open_candle() -> None:
    assert planned() == (OPEN + MIN - 100 * MIN, OPEN + MIN)


def test_limit_alone_gives_the_latest_candles() -> None:
    assert planned(limit=10) == (OPEN - 9 * MIN, OPEN + MIN)


def test_since_with_limit_gives_the_first_candles_from_since_rounded_up() -> None:
    since = OPEN - 50 * MIN - 1
    assert planned(since=since, limit=5) == (OPEN - 50 * MIN, OPEN - 45 * MIN)


def test_since_with_limit_stops_at_the_open_candle() -> None:
    assert planned(since=OPEN - 2 * MIN, limit=100) == (OPEN - 2 * MIN, OPEN + MIN)


def test_until_is_exclusive() -> None:
    assert planned(since=OPEN - 10 * MIN, until=OPEN - 5 * MIN) == (OPEN - 10 * MIN, OPEN - 5 * MIN)


def test_until_with_limit_gives_the_last_candles_before_it() -> None:
    assert planned(until=OPEN - 5 * MIN, limit=3) == (OPEN - 8 * MIN, OPEN - 5 * MIN)


def test_since_until_and_limit_take_the_first_limit_candles_of_the_range() -> None:
    assert planned(since=OPEN - 10 * MIN, until=OPEN, limit=2) == (OPEN - 10 * MIN, OPEN - 8 * MIN)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 20_001}, "limit"),
        ({"since": OPEN + MIN}, "since"),
        ({"since": OPEN - MIN, "until": OPEN - MIN}, "until"),
        ({"since": OPEN - 30_000 * MIN, "until": OPEN}, "until"),
    ],
)
def test_invalid_ranges_are_refused_naming_the_parameter(
    kwargs: dict[str, int], parameter: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        planned(**kwargs)
    assert caught.value.extra["parameter"] == parameter
