"""The per-container memory tier (L1): bounded in bytes, least recently used out first,
oversized values never kept, remembered errors forgotten once they expire."""

from __future__ import annotations

from market_proxy.cache.entry import CachedError, Entry
from market_proxy.cache.memory import MemoryTier
from market_proxy.settings import DataPolicy

POLICY = DataPolicy(fresh_s=2, swr_s=10, sie_s=60)
NOW = 1_764_000_000_000
ROOMY = 1 << 30


def entry(key: str, chars: int = 100, *, fetched_at: int = NOW) -> Entry:
    """An entry for ``key`` whose encoded payload is ``chars`` + 2 bytes (a JSON string)."""
    return Entry.create(key, "x" * chars, POLICY, fetched_at)


def cost(value: Entry) -> int:
    """What holding ``value`` counts against the bound, as the tier itself accounts it."""
    tier = MemoryTier(ROOMY)
    tier.put(value)
    return tier.bytes_used


def held(tier: MemoryTier, *keys: str) -> list[str]:
    """Which of ``keys`` the tier holds (reading them makes them recently used)."""
    return [key for key in keys if tier.get(key) is not None]


def error(until: int, code: str = "upstream_unavailable") -> CachedError:
    return CachedError(code=code, detail="the exchange failed", until=until, retry_after=None)


def test_bytes_used_never_exceed_the_bound_however_many_entries_are_put() -> None:
    # Given a tier with room for about ten entries of 100 characters,
    bound = 10 * cost(entry("probe"))
    tier = MemoryTier(bound)
    # when entries of assorted sizes keep arriving,
    used_after_each_put = []
    for index in range(200):
        tier.put(entry(f"k{index}", chars=50 + (index * 37) % 300))
        used_after_each_put.append(tier.bytes_used)
    # then the bound always holds, and the tier is still in use, not emptied.
    assert max(used_after_each_put) <= bound
    assert len(tier) > 1
    assert tier.bytes_used > bound // 2


def test_bytes_used_are_the_sum_of_what_is_held() -> None:
    # Given entries put, some replaced by bigger values, some evicted,
    values = [entry(f"k{index % 7}", chars=40 + index * 3) for index in range(30)]
    tier = MemoryTier(5 * cost(values[-1]))
    for value in values:
        tier.put(value)
    # when the held entries are read back,
    found = [tier.get(key) for key in {value.key for value in values}]
    kept = [value for value in found if value is not None]
    # then the tier's count is exactly what those cost, each counted once.
    assert len(kept) == len(tier)
    assert tier.bytes_used == sum(cost(value) for value in kept)


def test_the_least_recently_used_entry_is_evicted_first() -> None:
    # Given a full tier of three entries, the first of which was just read,
    tier = MemoryTier(3 * cost(entry("a")))
    for key in ("a", "b", "c"):
        tier.put(entry(key))
    assert tier.get("a") is not None
    # when a fourth arrives,
    tier.put(entry("d"))
    # then the one least recently used goes, not the one put first.
    assert held(tier, "a", "b", "c", "d") == ["a", "c", "d"]


def test_putting_a_key_again_makes_it_recently_used() -> None:
    # Given a full tier of three entries, the first of which was just refreshed,
    tier = MemoryTier(3 * cost(entry("a")))
    for key in ("a", "b", "c"):
        tier.put(entry(key))
    tier.put(entry("a", fetched_at=NOW + 1000))
    # when a fourth arrives,
    tier.put(entry("d"))
    # then "b" is the one evicted.
    assert held(tier, "a", "b", "c", "d") == ["a", "c", "d"]


def test_as_many_old_entries_go_as_a_big_new_one_needs() -> None:
    # Given a tier full of four small entries,
    small = entry("s0")
    tier = MemoryTier(4 * cost(small))
    for index in range(4):
        tier.put(entry(f"s{index}"))
    # when one entry exactly twice as costly as a small one arrives,
    big = entry("big", chars=2 * small.size - 2)
    assert cost(big) == 2 * cost(small)
    tier.put(big)
    # then the two least recently used make room for it, and only they.
    assert held(tier, "s0", "s1", "s2", "s3", "big") == ["s2", "s3", "big"]


def test_an_entry_larger_than_the_bound_is_not_kept_and_evicts_nothing() -> None:
    # Given a tier holding two entries, with room for three,
    tier = MemoryTier(3 * cost(entry("a")))
    tier.put(entry("a"))
    tier.put(entry("b"))
    used = tier.bytes_used
    # when an entry costing more than the whole bound is put,
    tier.put(entry("huge", chars=10_000))
    # then it is not kept, and what was held stays.
    assert tier.get("huge") is None
    assert held(tier, "a", "b") == ["a", "b"]
    assert tier.bytes_used == used


def test_an_entry_that_fills_the_whole_bound_is_kept_alone() -> None:
    # Given a tier holding small entries, and an entry costing exactly the bound,
    whole = entry("whole", chars=1000)
    tier = MemoryTier(cost(whole))
    tier.put(entry("a", chars=10))
    tier.put(entry("b", chars=10))
    # when it is put,
    tier.put(whole)
    # then it is kept, alone.
    assert held(tier, "a", "b", "whole") == ["whole"]
    assert tier.bytes_used == cost(whole)


def test_a_tier_bounded_at_zero_bytes_keeps_nothing() -> None:
    # Given MEMORY_CACHE_MAX_BYTES=0,
    tier = MemoryTier(0)
    # when an entry is put,
    tier.put(entry("a", chars=0))
    # then nothing is held.
    assert (tier.get("a"), len(tier), tier.bytes_used) == (None, 0, 0)


def test_an_older_value_never_replaces_a_newer_one_and_bytes_count_once() -> None:
    # Given a key holding a value fetched at NOW + 5 s,
    newer = entry("a", chars=300, fetched_at=NOW + 5000)
    tier = MemoryTier(ROOMY)
    tier.put(newer)
    # when a value fetched earlier arrives late (a slow refresh),
    tier.put(entry("a", chars=100, fetched_at=NOW))
    # then the newer value stays, counted once.
    assert tier.get("a") == newer
    assert (len(tier), tier.bytes_used) == (1, cost(newer))


def test_a_newer_value_replaces_the_old_one_and_only_its_bytes_count() -> None:
    # Given a key holding a large value,
    tier = MemoryTier(ROOMY)
    tier.put(entry("a", chars=3000, fetched_at=NOW))
    # when a newer, smaller value for it is put,
    newer = entry("a", chars=100, fetched_at=NOW + 1000)
    tier.put(newer)
    # then it is served, and the old value's bytes are no longer counted.
    assert tier.get("a") == newer
    assert (len(tier), tier.bytes_used) == (1, cost(newer))


def test_entries_are_kept_past_their_freshness_for_stale_answers() -> None:
    # Given an entry whose freshness, and even stale windows, are long past,
    old = entry("a", fetched_at=NOW - 3_600_000)
    assert old.lifetime.keep_until < NOW
    tier = MemoryTier(ROOMY)
    # when it is put and read back,
    tier.put(old)
    # then the tier still has it: judging freshness is the engine's business.
    assert tier.get("a") == old


def test_a_remembered_error_is_answered_until_it_expires_then_forgotten() -> None:
    # Given a failure remembered for one second,
    tier = MemoryTier(ROOMY)
    remembered = error(until=NOW + 1000)
    tier.put_error("a", remembered)
    # when it is asked for within that second, at its end, and after,
    within = [tier.error("a", NOW), tier.error("a", NOW + 999)]
    at_end = tier.error("a", NOW + 1000)
    # then it is answered within, and gone from then on, for good.
    assert within == [remembered, remembered]
    assert at_end is None
    assert tier.error("a", NOW) is None
    assert tier.error("b", NOW) is None


def test_a_later_failure_replaces_the_remembered_one() -> None:
    # Given a failure remembered for a key,
    tier = MemoryTier(ROOMY)
    tier.put_error("a", error(until=NOW + 1000))
    # when another is remembered for it,
    later = error(until=NOW + 60_000, code="unknown_market")
    tier.put_error("a", later)
    # then the later one is answered, for its own span.
    assert tier.error("a", NOW + 30_000) == later


def test_a_new_value_clears_the_remembered_error_of_its_key_only() -> None:
    # Given failures remembered for two keys,
    tier = MemoryTier(ROOMY)
    tier.put_error("a", error(until=NOW + 1000))
    tier.put_error("b", error(until=NOW + 1000))
    # when a value for one of them arrives,
    tier.put(entry("a"))
    # then that key's failure is forgotten, the other's is not.
    assert tier.error("a", NOW) is None
    assert tier.error("b", NOW) is not None


def test_remembered_errors_are_bounded_the_oldest_forgotten_first() -> None:
    # Given a tier that has remembered failures for a great many keys,
    tier = MemoryTier(ROOMY)
    for index in range(20_000):
        tier.put_error(f"k{index}", error(until=NOW + 60_000))
    # when the first and the last are asked for,
    first, last = tier.error("k0", NOW), tier.error("k19999", NOW)
    # then the oldest has been forgotten to make room, the newest has not.
    assert first is None
    assert last is not None


def test_clear_empties_values_errors_and_the_byte_count() -> None:
    # Given a tier holding values and a remembered failure,
    tier = MemoryTier(ROOMY)
    tier.put(entry("a"))
    tier.put(entry("b"))
    tier.put_error("c", error(until=NOW + 60_000))
    # when it is cleared,
    tier.clear()
    # then nothing is left, and the whole bound is free again.
    assert (len(tier), tier.bytes_used) == (0, 0)
    assert (tier.get("a"), tier.get("b"), tier.error("c", NOW)) == (None, None, None)
    whole = entry("whole", chars=1000)
    bounded = MemoryTier(cost(whole))
    bounded.put(entry("small", chars=10))
    bounded.clear()
    bounded.put(whole)
    assert bounded.get("whole") == whole
