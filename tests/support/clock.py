from __future__ import annotations

from infra.exchange_sim import ExchangeSim


class SharedClock:
    """One frozen "now" for the service and the loopback exchange, moved only by the test."""

    def __init__(self, now_ms: int, sim: ExchangeSim) -> None:
        self.now = now_ms
        self._sim = sim
        sim.set_clock(now_ms)

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1000)
        self._sim.set_clock(self.now)
