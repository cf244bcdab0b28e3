"""Stream settings for tests: polls, freshness and heartbeats fast enough that a test sees
in a second what a deployment shows in a minute."""

from __future__ import annotations

from typing import Any

FAST_STREAMS: dict[str, Any] = {
    "ticker_ttl_seconds": 0.2,
    "stream_interval_seconds": 0.2,
    "stream_min_interval_seconds": 0.1,
    "stream_heartbeat_seconds": 0.5,
    "stream_max_seconds": 30,
    "stream_retry_ms": 1500,
    "refresh_in_background": True,
}
