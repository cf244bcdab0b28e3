from market_proxy.intervals import clip, merge, subtract


def test_merge_joins_touching_and_overlapping_and_drops_empty() -> None:
    assert merge([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]) == [(0, 3), (5, 9)]


def test_subtract_returns_the_uncovered_parts_in_order() -> None:
    assert subtract((0, 10), [(2, 4), (6, 7)]) == [(0, 2), (4, 6), (7, 10)]


def test_subtract_of_full_cover_is_empty() -> None:
    assert subtract((3, 8), [(0, 5), (5, 9)]) == []


def test_subtract_ignores_cover_outside_the_range() -> None:
    assert subtract((10, 20), [(0, 5), (25, 30)]) == [(10, 20)]


def test_clip_keeps_only_what_lies_within_bounds() -> None:
    assert clip([(0, 5), (8, 12), (20, 30)], (3, 10)) == [(3, 5), (8, 10)]
