"""The page walker against exchanges of every paging style ccxt meets, played in memory.

Each fake holds candles on a one-minute grid and answers a page as its style does: forward
from ``since`` (Binance), a bounded window (Coinbase Exchange, Bybit and OKX given an end),
newest first up to a fixed cap smaller than asked (an exchange whose real page is smaller
than ccxt records), only its latest candles whatever ``since`` says (Gemini, Phemex spot),
only its latest N however far back ``since`` is (Kraken). Whatever the style, the walk must
return every candle the exchange can serve in the range and call a range a gap only where
the exchange has said so.
"""

from __future__ import annotations

from typing import Any

import pytest

from market_proxy.candles.walk import Walked, walk
from market_proxy.exchanges.paging import Paging

pytestmark = pytest.mark.anyio
MIN = 60_000
NOW = 1_000_000 * MIN  # the open candle


class Fake:
    """Candles at every minute of ``[first, NOW]`` but ``holes``; answers as ``style`` does."""

    def __init__(
        self,
        style: str,
        *,
        first: int = 0,
        holes: tuple[tuple[int, int], ...] = (),
        cap: int | None = None,
        keeps: int | None = None,
    ) -> None:
        self.style, self.first, self.holes, self.cap, self.keeps = style, first, holes, cap, keeps
        self.asked: list[tuple[int | None, int, int | None]] = []

    def held(self, start: int, stop: int) -> list[int]:
        low = max(start, self.first)
        if self.keeps is not None:
            low = max(low, NOW - (self.keeps - 1) * MIN)
        low = -(-low // MIN) * MIN
        return [t for t in range(low, min(stop, NOW + 1), MIN) if not _in(t, self.holes)]

    async def page(self, since: int | None, limit: int, until: int | None) -> list[list[float]]:
        self.asked.append((since, limit, until))
        limit = min(limit, self.cap or limit)
        if since is None or self.style == "latest":
            stamps = self.held(0, NOW + 1)[-limit:]
        elif self.style == "forward":
            stamps = self.held(since, (until + 1) if until is not None else NOW + 1)[:limit]
        else:  # "newest": the newest ``limit`` within [since, until or now]
            stamps = self.held(since, (until + 1) if until is not None else NOW + 1)[-limit:]
        return [[t, 1.0, 1.0, 1.0, 1.0, 1.0] for t in stamps]


def _in(ts: int, holes: tuple[tuple[int, int], ...]) -> bool:
    return any(a <= ts < b for a, b in holes)


async def walked(fake: Fake, paging: Paging, start: int, end: int, **kw: Any) -> Walked:
    return await walk(fake.page, paging, [(start, end)], step_ms=MIN, **kw)


def stamps(result: Walked) -> list[int]:
    return [int(row[0]) for row in result.rows]


BOUNDED = Paging(page=300, follows_since=True, bounded=True)
UNBOUNDED = Paging(page=300, follows_since=True, bounded=False)
START = NOW - 2000 * MIN
END = NOW - 100 * MIN


@pytest.mark.parametrize(
    ("style", "paging"),
    [("forward", BOUNDED), ("newest", BOUNDED), ("forward", UNBOUNDED)],
    ids=["forward-bounded", "newest-bounded", "forward-unbounded"],
)
async def test_a_whole_range_comes_back_in_the_fewest_pages(style: str, paging: Paging) -> None:
    fake = Fake(style)
    result = await walked(fake, paging, START, END)
    assert stamps(result) == list(range(START, END, MIN))
    assert result.pages == len(fake.asked) == -(-1900 // 300)
    assert result.firm == [(START, END)]


@pytest.mark.parametrize(
    ("style", "paging"),
    [("forward", BOUNDED), ("newest", BOUNDED), ("forward", UNBOUNDED)],
)
async def test_a_hole_wider_than_a_page_is_a_gap_and_nothing_after_it_is_lost(
    style: str, paging: Paging
) -> None:
    hole = (START + 400 * MIN, START + 1100 * MIN)
    fake = Fake(style, holes=(hole,))
    result = await walked(fake, paging, START, END)
    assert stamps(result) == [t for t in range(START, END, MIN) if not _in(t, (hole,))]
    assert result.firm == [(START, END)], "the hole is vouched for: candles came after it"
    assert result.tentative == []


async def test_a_bounded_window_before_the_listing_is_empty_and_no_end_to_the_walk() -> None:
    listed = START + 1500 * MIN
    fake = Fake("newest", first=listed)
    result = await walked(fake, BOUNDED, START, END)
    assert stamps(result) == list(range(listed, END, MIN))
    assert result.pages == -(-1900 // 300)
    assert result.firm == [(START, END)]


async def test_the_listing_time_saves_every_page_before_it() -> None:
    listed = START + 1500 * MIN
    fake = Fake("newest", first=listed)
    result = await walked(fake, BOUNDED, START, END, listed_ms=listed)
    assert stamps(result) == list(range(listed, END, MIN))
    assert result.pages == -(-400 // 300)
    assert all(since is None or since >= listed for since, _, _ in fake.asked)


async def test_an_exchange_that_sends_nothing_leaves_nothing_vouched_as_a_gap() -> None:
    fake = Fake("forward", first=NOW + MIN)  # nothing at all yet
    result = await walked(fake, BOUNDED, START, END)
    assert result.rows == []
    assert result.firm == []
    assert result.tentative == [(START, END)]


async def test_a_page_smaller_than_asked_is_asked_again_where_ccxt_cannot_bound_it() -> None:
    fake = Fake("forward", cap=120)  # the exchange's real page is smaller than ccxt says
    result = await walked(fake, UNBOUNDED, START, END)
    assert stamps(result) == list(range(START, END, MIN))
    assert result.firm == [(START, END)]


async def test_only_the_latest_candles_take_one_request_and_older_ones_are_its_history_limit() -> (
    None
):
    fake = Fake("latest")
    paging = Paging(page=500, follows_since=False, bounded=False)
    result = await walked(fake, paging, NOW - 2000 * MIN, NOW + MIN)
    assert result.pages == 1
    assert stamps(result) == list(range(NOW - 499 * MIN, NOW + MIN, MIN))
    assert result.firm == [(NOW - 2000 * MIN, NOW + MIN)]


async def test_a_recent_only_history_answers_a_past_start_with_its_latest_candles() -> None:
    fake = Fake("forward", keeps=720)  # Kraken: since is honoured within its last 720
    result = await walked(
        fake, Paging(page=720, follows_since=True, bounded=False), START, NOW + MIN
    )
    assert result.pages == 1
    assert stamps(result) == list(range(NOW - 719 * MIN, NOW + MIN, MIN))
    assert result.firm == [(START, NOW + MIN)]


async def test_walking_stops_once_enough_candles_are_in_hand() -> None:
    fake = Fake("forward")
    result = await walked(fake, BOUNDED, START, NOW + MIN, enough=350)
    assert len(result.rows) >= 350
    assert result.pages == 2


@pytest.mark.parametrize("quiet_minutes", [1, 50])
async def test_a_quiet_stretch_at_the_end_is_tentative_not_a_gap(quiet_minutes: int) -> None:
    quiet = (END - quiet_minutes * MIN, NOW + MIN)
    fake = Fake("forward", holes=(quiet,))
    result: Walked = await walked(fake, BOUNDED, START, END)
    assert result.tentative == [(quiet[0], END)]
    assert result.firm == [(START, quiet[0])]


async def test_a_walk_out_of_time_asks_no_further_page_and_says_so() -> None:
    fake = Fake("forward")
    in_time = iter([True, False])  # asked before the second page and the third
    result = await walked(fake, BOUNDED, START, END, in_time=lambda: next(in_time))
    assert result.pages == len(fake.asked) == 2
    assert result.cut_short
    assert stamps(result) == list(range(START, START + 600 * MIN, MIN))
    assert result.firm == [(START, START + 600 * MIN)], "only what was asked is vouched for"
