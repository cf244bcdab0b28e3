"""An answer of the service: data with its freshness, ready for any transport."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from market_proxy.cache.entry import Cached, Freshness, digest, encode_json


@dataclass(frozen=True, slots=True)
class Answer:
    """``data`` as the exchange's answer was shaped (see :mod:`market_proxy.models`), how
    fresh it is, and the ETag of exactly this data.

    ``encoded`` is the data's JSON when it is already at hand (answers assembled from many
    cache entries encode it once, for their ETag), so a transport never encodes it again.
    """

    data: dict[str, Any]
    freshness: Freshness
    etag: str
    encoded: bytes | None = None

    @classmethod
    def cached(cls, cached: Cached) -> Answer:
        return cls(cached.payload, cached.freshness, cached.entry.etag)

    @classmethod
    def assembled(cls, data: dict[str, Any], freshness: Freshness) -> Answer:
        encoded = encode_json(data)
        return cls(data, freshness, digest(encoded), encoded)

    def freshness_body(self) -> dict[str, Any]:
        """How fresh the data is, as every answer reports it."""
        fresh = self.freshness
        timestamp = self.data.get("timestamp")
        return {
            "source": fresh.source,
            "fetched_at": fresh.lifetime.fetched_at,
            "age_ms": fresh.age_ms,
            "fresh_until": fresh.lifetime.fresh_until,
            "stale": fresh.is_stale,
            "stale_reason": fresh.stale_reason,
            "exchange_timestamp": timestamp if isinstance(timestamp, int) else None,
        }

    def body(self) -> dict[str, Any]:
        """The data with its freshness: what every transport sends."""
        return {**self.data, "freshness": self.freshness_body()}

    def body_json(self) -> bytes:
        """:meth:`body` as JSON; the data's own JSON is reused when it is at hand."""
        if self.encoded is None or not self.data:
            return encode_json(self.body())
        return self.encoded[:-1] + b',"freshness":' + encode_json(self.freshness_body()) + b"}"
