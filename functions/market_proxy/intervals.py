"""Half-open integer intervals ``(start, end)``: the arithmetic of candle coverage."""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[int, int]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-empty, with touching or overlapping intervals joined."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[0] < i[1]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract(wanted: Interval, covered: Iterable[Interval]) -> list[Interval]:
    """The parts of ``wanted`` that no interval of ``covered`` contains."""
    missing: list[Interval] = []
    cursor, end = wanted
    for c_start, c_end in merge(covered):
        if c_end <= cursor:
            continue
        if c_start >= end:
            break
        if c_start > cursor:
            missing.append((cursor, c_start))
        cursor = max(cursor, c_end)
        if cursor >= end:
            break
    if cursor < end:
        missing.append((cursor, end))
    return missing


def clip(intervals: Iterable[Interval], bounds: Interval) -> list[Interval]:
    low, high = bounds
    return merge((max(s, low), min(e, high)) for s, e in intervals)
