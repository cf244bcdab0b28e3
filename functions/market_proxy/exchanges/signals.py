"""What an exchange's answer says about calling it again: its ``Retry-After``, and the weight
of its limit it reports used (Binance's ``X-MBX-USED-WEIGHT-1M``).

Neither is trusted as sent: a ``Retry-After`` is delta-seconds or an HTTP-date, bounded by
``RETRY_AFTER_MAX_SECONDS``, and anything else (``inf``, ``1e300``, junk) is no value at
all, so the failure's own default applies.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from typing import Any

_DELTA_SECONDS = re.compile(r"[0-9]{1,10}(\.[0-9]{1,6})?")
# Binance's report of the weight used in the current minute, and its spot limit (overridden
# per exchange in EXCHANGE_LIMITS: weight_header, weight_limit, weight_window_s).
WEIGHT_HEADER = "x-mbx-used-weight-1m"
WEIGHT_LIMIT = 6000
# Used weight past this part of the limit pauses the fleet until the weight's window ends.
WEIGHT_PAUSE_AT = 0.9


def retry_after(headers: Mapping[str, str], cap_s: float, now_ms: int) -> float | None:
    """The ``Retry-After`` an exchange sent, in seconds: delta-seconds (digits, perhaps with
    a decimal part) or an HTTP-date, never more than ``cap_s``; None for anything else
    (``inf``, ``1e300``, a date in the past, junk): the failure's default then applies."""
    for name, value in headers.items():
        if name.lower() != "retry-after":
            continue
        text = str(value).strip()
        if _DELTA_SECONDS.fullmatch(text):
            return min(float(text[:32]), cap_s)
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - now_ms / 1000
        return min(seconds, cap_s) if seconds > 0 else None
    return None


def weight_pause(headers: Mapping[str, str], limit: Mapping[str, Any], now_ms: int) -> int | None:
    """Until when to pause calls to an exchange whose answer reports the weight used of its
    limit near that limit (the end of the weight's window), else None."""
    header = str(limit.get("weight_header", WEIGHT_HEADER)).lower()  # names are case-blind
    for name, value in headers.items():
        if name.lower() != header:
            continue
        try:
            used = float(value)
        except ValueError:
            return None
        most = float(limit.get("weight_limit", WEIGHT_LIMIT))
        if not used >= most * WEIGHT_PAUSE_AT:  # (a NaN is not near anything)
            return None
        window_ms = round(float(limit.get("weight_window_s", 60)) * 1000)
        return (now_ms // window_ms + 1) * window_ms
    return None
