"""What the cache holds for one key, and how fresh a value is at a given moment.

Times are integer epoch milliseconds throughout. Freshness is judged from these stamps only,
never from whether DynamoDB has got round to deleting an expired item.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from market_proxy.settings import DataPolicy

Source = Literal["l1", "l2", "upstream", "stale"]


def encode_json(payload: Any) -> bytes:
    """The one JSON encoding, for storage, sizes, ETags and answers: compact UTF-8.

    orjson writes floats (most of a candle answer) about ten times faster than ``json``.
    NaN and infinities become null: no number to pass on. What orjson cannot write (an
    integer past 64 bits, a key that is not a string) is written by ``json`` instead.
    """
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str).encode()


def decode_json(body: bytes | str) -> Any:
    return orjson.loads(body)


def digest(body: bytes) -> str:
    """The ETag of an encoded payload: it changes exactly when the payload does."""
    return hashlib.blake2b(body, digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True)
class Lifetime:
    """When a value was fetched, and until when it may be served: fresh until
    ``fresh_until``; stale while another caller revalidates it until ``swr_until``; stale on
    an exchange error until ``sie_until``."""

    fetched_at: int
    fresh_until: int
    swr_until: int
    sie_until: int

    @classmethod
    def starting(cls, now_ms: int, policy: DataPolicy) -> Lifetime:
        fresh_until = now_ms + round(policy.fresh_s * 1000)
        return cls(
            fetched_at=now_ms,
            fresh_until=fresh_until,
            swr_until=fresh_until + round(policy.swr_s * 1000),
            sie_until=fresh_until + round(policy.sie_s * 1000),
        )

    @classmethod
    def fixed(cls, fetched_at: int, fresh_until: int) -> Lifetime:
        """Fresh until ``fresh_until``, and never served stale after that."""
        return cls(fetched_at, fresh_until, fresh_until, fresh_until)

    def is_fresh(self, now_ms: int) -> bool:
        return now_ms < self.fresh_until

    def may_serve_while_revalidating(self, now_ms: int) -> bool:
        return now_ms < self.swr_until

    def may_serve_on_error(self, now_ms: int) -> bool:
        return now_ms < self.sie_until

    @property
    def keep_until(self) -> int:
        """Past this instant the value is useless and storage may drop it."""
        return max(self.fresh_until, self.swr_until, self.sie_until)


@dataclass(frozen=True, slots=True)
class Freshness:
    """How fresh an answer is as served to one caller: where it came from, and its age."""

    lifetime: Lifetime
    source: Source
    served_at: int
    stale_reason: str | None = None

    @property
    def age_ms(self) -> int:
        return max(0, self.served_at - self.lifetime.fetched_at)

    @property
    def is_stale(self) -> bool:
        return self.source == "stale"


@dataclass(frozen=True, slots=True)
class Entry:
    """A value the cache stores under ``key``, with its lifetime and the ETag of its JSON."""

    key: str
    payload: Any
    lifetime: Lifetime
    etag: str
    size: int

    @classmethod
    def create(cls, key: str, payload: Any, policy: DataPolicy, now_ms: int) -> Entry:
        body = encode_json(payload)
        return cls(key, payload, Lifetime.starting(now_ms, policy), digest(body), len(body))

    def is_fresh(self, now_ms: int) -> bool:
        return self.lifetime.is_fresh(now_ms)

    def served(self, source: Source, now_ms: int, stale_reason: str | None = None) -> Cached:
        return Cached(self, Freshness(self.lifetime, source, now_ms, stale_reason))


@dataclass(frozen=True, slots=True)
class Cached:
    """An entry as served to one caller."""

    entry: Entry
    freshness: Freshness

    @property
    def payload(self) -> Any:
        return self.entry.payload

    @property
    def source(self) -> Source:
        return self.freshness.source

    @property
    def is_stale(self) -> bool:
        return self.freshness.is_stale


@dataclass(frozen=True, slots=True)
class CachedError:
    """A failure remembered for a short while, so callers do not repeat it upstream.

    Used for "no such market" (negative caching) and, across containers, for a refresh that
    failed while others waited on its lease.
    """

    code: str
    detail: str
    until: int
    retry_after: float | None = None

    def is_active(self, now_ms: int) -> bool:
        return now_ms < self.until


@dataclass(frozen=True, slots=True)
class StoredItem:
    """Everything the shared store knows of one key: value, refresh lease, recent failure."""

    entry: Entry | None = None
    lease_owner: str | None = None
    lease_until: int = 0
    error: CachedError | None = None

    def lease_active(self, now_ms: int) -> bool:
        return self.lease_owner is not None and now_ms < self.lease_until


def newest(a: Entry | None, b: Entry | None) -> Entry | None:
    """The later fetched of two entries of one key (either may be missing)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a.lifetime.fetched_at >= b.lifetime.fetched_at else b
