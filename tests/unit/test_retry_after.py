"""What an exchange's ``Retry-After`` is taken to mean: delta-seconds or an HTTP-date,
bounded; anything else means the failure's own default (None here)."""

from __future__ import annotations

import email.utils

import pytest

from market_proxy.exchanges.signals import retry_after, weight_pause

NOW_MS = 1_800_000_000_000
CAP = 3600.0


@pytest.mark.parametrize(
    ("sent", "taken"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("86400", CAP),
    ],
)
def test_delta_seconds_are_taken_up_to_the_cap(sent: str, taken: float) -> None:
    assert retry_after({"Retry-After": sent}, CAP, NOW_MS) == taken


@pytest.mark.parametrize(
    "sent",
    ["inf", "Infinity", "nan", "1e300", "1" + "0" * 300, "-5", "soon", "", "0x10", "7 s"],
)
def test_anything_but_delta_seconds_or_a_date_is_not_taken(sent: str) -> None:
    assert retry_after({"retry-after": sent}, CAP, NOW_MS) is None


def test_an_http_date_is_the_time_left_until_it() -> None:
    date = email.utils.formatdate((NOW_MS + 90_000) / 1000, usegmt=True)
    assert retry_after({"Retry-After": date}, CAP, NOW_MS) == pytest.approx(90.0)


def test_a_date_past_or_far_ahead_is_none_or_the_cap() -> None:
    past = email.utils.formatdate((NOW_MS - 90_000) / 1000, usegmt=True)
    far = email.utils.formatdate((NOW_MS / 1000) + 10 * 86400, usegmt=True)
    assert retry_after({"Retry-After": past}, CAP, NOW_MS) is None
    assert retry_after({"Retry-After": far}, CAP, NOW_MS) == CAP


def test_no_retry_after_is_none() -> None:
    assert retry_after({"Content-Type": "application/json"}, CAP, NOW_MS) is None


def test_used_weight_is_read_whatever_case_the_header_is_named_in() -> None:
    limit = {"weight_header": "X-MBX-USED-WEIGHT-1M", "weight_limit": 100}
    assert weight_pause({"x-mbx-used-weight-1m": "95"}, limit, NOW_MS) == NOW_MS + 60_000
    assert weight_pause({"X-Mbx-Used-Weight-1m": "10"}, limit, NOW_MS) is None
