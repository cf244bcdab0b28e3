"""The freshness headers every cached answer carries, read as an HTTP cache reads them
(RFC 9111): ``max-age`` is the data's whole freshness lifetime and ``Age`` how much of it has
gone, so a cache downstream keeps a fresh answer exactly as long as it stays fresh."""

from __future__ import annotations

from market_proxy.answers import Answer
from market_proxy.api.rendering import freshness_headers
from market_proxy.cache.entry import Entry
from market_proxy.settings import DataPolicy

FETCHED = 1_764_000_000_000
TICKER = DataPolicy(fresh_s=2, swr_s=10, sie_s=300)


def entry(policy: DataPolicy = TICKER) -> Entry:
    return Entry.create("ticker#binance#BTC/USDT", {"last": 1.0}, policy, FETCHED)


def remaining_for_a_cache(headers: dict[str, str]) -> int:
    """What a cache downstream computes: freshness lifetime less current age."""
    max_age = int(headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    return max_age - int(headers["Age"])


def test_a_cache_downstream_keeps_an_answer_exactly_while_it_is_fresh() -> None:
    fresh = entry(DataPolicy(fresh_s=60))
    for age_s in (0, 1, 30, 59):
        headers = freshness_headers(Answer.cached(fresh.served("l1", FETCHED + age_s * 1000)))
        assert headers["Cache-Control"] == "public, max-age=60"
        assert headers["Age"] == str(age_s)
        assert remaining_for_a_cache(headers) == 60 - age_s


def test_no_cache_is_allowed_to_serve_it_stale_unmarked() -> None:
    headers = freshness_headers(Answer.cached(entry().served("l2", FETCHED + 500)))
    assert "stale-while-revalidate" not in headers["Cache-Control"]
    assert "stale-if-error" not in headers["Cache-Control"]


def test_a_stale_answer_is_marked_and_never_cached() -> None:
    headers = freshness_headers(
        Answer.cached(entry().served("stale", FETCHED + 5000, "upstream_timeout"))
    )
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Cache"] == "stale"
    assert headers["X-Stale-Reason"] == "upstream_timeout"
    assert headers["Age"] == "5"


def test_the_etag_is_the_payloads_and_the_fetch_time_is_exact() -> None:
    served = entry().served("upstream", FETCHED)
    headers = freshness_headers(Answer.cached(served))
    assert headers["ETag"] == f'"{served.entry.etag}"'
    assert headers["X-Fetched-At"] == str(FETCHED)
    assert headers["X-Data-Age-Ms"] == "0"
