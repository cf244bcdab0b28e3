"""Steering a loopback exchange that runs in another process (the demo, benchmarks)."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any


class SimControl:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _post(self, action: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310 - a loopback URL we were given
            f"{self.url}/_sim/{action}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310
            return json.loads(response.read())

    def calls(self, exchange_id: str | None = None, endpoint: str | None = None) -> int:
        query = urllib.parse.urlencode(
            {k: v for k, v in (("exchange", exchange_id), ("endpoint", endpoint)) if v}
        )
        with urllib.request.urlopen(f"{self.url}/_sim/calls?{query}", timeout=10) as response:  # noqa: S310  # nosec B310
            count: int = json.loads(response.read())["calls"]
            return count

    def reset_calls(self) -> None:
        self._post("reset", {})

    def set_ticker(self, exchange_id: str, market_id: str, *, last: float, **more: float) -> None:
        self._post(
            "ticker", {"exchange": exchange_id, "market_id": market_id, "last": last, **more}
        )

    def inject(self, exchange_id: str, fault: str, **options: Any) -> None:
        self._post("fault", {"exchange": exchange_id, "fault": fault, **options})

    def set_clock(self, now_ms: int | None) -> None:
        self._post("clock", {"now_ms": now_ms})

    def set_latency(self, seconds: float) -> None:
        self._post("latency", {"seconds": seconds})

    def set_listing(
        self, exchange_id: str, market_id: str, listed_ms: int, *, kind: str | None = None
    ) -> None:
        self._post(
            "listing",
            {"exchange": exchange_id, "market_id": market_id, "listed_ms": listed_ms, "kind": kind},
        )

    def set_history_limit(self, exchange_id: str, candles: int | None) -> None:
        self._post("history_limit", {"exchange": exchange_id, "candles": candles})

    def add_gap(self, exchange_id: str, market_id: str, start_ms: int, end_ms: int) -> None:
        self._post(
            "gap",
            {
                "exchange": exchange_id,
                "market_id": market_id,
                "start_ms": start_ms,
                "end_ms": end_ms,
            },
        )

    def reset_history(self) -> None:
        self._post("reset_history", {})
