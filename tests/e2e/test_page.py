"""The live-ticker page at `/`, in a real headless browser (Debian's Chromium)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from infra.exchange_sim import ExchangeSim
from market_proxy.api.app import create_app
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.http import serve
from tests.support.stack import EXCHANGES

pytestmark = pytest.mark.e2e
# Without these, Chromium keeps reaching for Google's services, which this network refuses.
QUIET = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: `make deps` installs Debian's chromium package"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=QUIET)
        yield launched
        launched.close()


@pytest.fixture
def url(settings: Settings) -> Iterator[str]:
    fast = settings.model_copy(
        update={
            "ticker_ttl_seconds": 0.2,
            "stream_interval_seconds": 0.3,
            "stream_min_interval_seconds": 0.1,
            "refresh_in_background": True,
        }
    )
    with serve(create_app(MarketData.from_settings(fast))) as base:
        yield base


def test_the_page_shows_the_exchanges_ticker_and_follows_its_moves(
    browser: Browser, url: str, sim: ExchangeSim
) -> None:
    sim.set_ticker("binance", "BTCUSDT", last=12345.5, bid=12345.0, ask=12346.0)
    page = browser.new_page(locale="en-US")
    page.goto(f"{url}/?exchange=binance&symbols=BTC/USDT,ETH/USDT")
    row = page.locator('tr[data-symbol="BTC/USDT"]')
    expect(row.locator("td").nth(1)).to_have_text("12,345.5", timeout=10_000)
    expect(row.locator("td").nth(2)).to_have_text("12,345")
    expect(row.locator(".badge")).to_have_text("upstream")
    expect(page.locator("#status")).to_have_text("live: binance")
    expect(page.locator('tr[data-symbol="ETH/USDT"]')).to_be_visible()

    sim.set_ticker("binance", "BTCUSDT", last=12400.25)
    expect(row.locator("td").nth(1)).to_have_text("12,400.25", timeout=10_000)
    expect(row.locator("td").nth(1)).to_have_class("up")
    expect(row.locator("td").nth(7)).to_contain_text(" s")
    page.close()


def test_the_page_lists_the_served_exchanges(browser: Browser, url: str) -> None:
    page = browser.new_page()
    page.goto(url + "/")
    expect(page.locator("#exchange option")).to_have_count(len(EXCHANGES))
    expect(page.locator("#exchange option").first).to_have_attribute("value", "binance")
    page.close()
