"""The wall clock, in the one unit the service uses: integer epoch milliseconds.

Every part takes its clock as a parameter (default :func:`now_ms`), so tests drive time.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
