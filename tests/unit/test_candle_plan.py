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


def test_since_inside_the_open_candle_asks_for_nothing_yet_not_an_error() -> None:
    # Polling with since = last candle seen + 1 ms: no candle opens there until the next one.
    assert planned(since=OPEN + 1) == (OPEN + MIN, OPEN + MIN)


def test_until_near_the_epoch_never_starts_before_it() -> None:
    assert planned(until=5 * MIN, limit=100) == (0, 5 * MIN)


def test_until_at_the_epoch_holds_no_candle() -> None:
    with pytest.raises(InvalidParameter) as caught:
        planned(until=0, limit=10)
    assert caught.value.extra["parameter"] == "until"


WEEK = 7 * 1440 * MIN


def test_weeks_keep_the_clients_bounds_for_the_exchanges_calendar() -> None:
    # A Monday is no multiple of a week since the epoch (a Thursday): it must not be rounded.
    monday = 1_698_624_000_000  # Monday 30 October 2023
    query = plan(
        timeframe="1w",
        tf_ms=WEEK,
        since=monday,
        until=None,
        limit=4,
        now=NOW,
        settings=SETTINGS,
    )
    assert (query.start, query.count, query.aligned, query.latest) == (monday, 4, False, False)
    assert query.end == NOW + 1, "any week opened by now may be in the answer"
