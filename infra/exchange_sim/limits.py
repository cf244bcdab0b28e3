"""An exchange's limit on what one address may ask, as exchanges enforce it on us.

Per exchange, a number of requests per wall-clock second (all our containers reach the
loopback exchange from one address, as a fleet behind one NAT gateway reaches a real one).
Past it, the exchange answers 429 with ``Retry-After``; after ``ban_after`` such answers, it
bans the address (Binance's 418, each format's own ban answer) for ``ban_s``. Binance's
answers also report the weight used this minute (``X-MBX-USED-WEIGHT-1M``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


@dataclass
class _Limit:
    per_second: int
    ban_after: int | None
    ban_s: float
    refused: int = 0
    banned_until: float = 0.0


class AddressLimits:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._limits: dict[str, _Limit] = {}
        self._seconds: Counter[tuple[str, int]] = Counter()
        self._minutes: Counter[tuple[str, int]] = Counter()
        self.answered: Counter[tuple[str, str]] = Counter()  # (exchange, "429"/"418")

    def set(
        self, exchange: str, per_second: int | None, *, ban_after: int | None, ban_s: float
    ) -> None:
        with self._lock:
            if per_second is None:
                self._limits.pop(exchange, None)
            else:
                self._limits[exchange] = _Limit(per_second, ban_after, ban_s)

    def clear(self) -> None:
        with self._lock:
            self._limits.clear()
            self._seconds.clear()
            self._minutes.clear()
            self.answered.clear()

    def admit(self, exchange: str) -> tuple[str | None, int]:
        """The refusal this request gets ("429", "418" or None), and the weight used this
        minute once it is counted."""
        now = time.time()
        with self._lock:
            second, minute = int(now), int(now // 60)
            self._seconds[(exchange, second)] += 1
            self._minutes[(exchange, minute)] += 1
            used = self._minutes[(exchange, minute)]
            limit = self._limits.get(exchange)
            if limit is None:
                return None, used
            if now < limit.banned_until:
                self.answered[(exchange, "418")] += 1
                return "418", used
            if self._seconds[(exchange, second)] <= limit.per_second:
                return None, used
            limit.refused += 1
            if limit.ban_after is not None and limit.refused > limit.ban_after:
                limit.banned_until = now + limit.ban_s
                self.answered[(exchange, "418")] += 1
                return "418", used
            self.answered[(exchange, "429")] += 1
            return "429", used

    def busiest_second(self, exchange: str) -> int:
        """The most requests the exchange received in any one wall-clock second."""
        with self._lock:
            return max((n for (ex, _), n in self._seconds.items() if ex == exchange), default=0)
