"""The live page at `/` and the docs at `/docs`, in a real headless browser (Debian's Chromium),
loading nothing from outside the app."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from itertools import accumulate
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from infra.exchange_sim import ExchangeSim
from market_proxy.api import page as page_module
from market_proxy.api.app import create_app
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.http import serve
from tests.support.stack import EXCHANGES

pytestmark = pytest.mark.e2e
# The app is browsed under a name, as when deployed: code that treats loopback hosts apart
# (Swagger UI's online validator badge, an image from validator.swagger.io) acts as for users.
HOST = "market.test"
# Without these, Chromium keeps reaching for Google's services, which this network refuses.
QUIET = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
]
UP, DOWN = (0x16, 0xA3, 0x4A), (0xDC, 0x26, 0x26)  # the page's candle colours


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is missing: `make deps` installs Debian's chromium package"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=QUIET)
        yield launched
        launched.close()


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """The app's loopback URL, for the test's own requests."""
    fast = settings.model_copy(
        update={
            "ticker_ttl_seconds": 0.2,
            "stream_interval_seconds": 0.3,
            "stream_min_interval_seconds": 0.1,
            "refresh_in_background": True,
            # The loopback exchange's candles follow their own path, not set_ticker: the
            # page's open candle keeps the ticker's close only while its candles are older.
            "ohlcv_open_ttl_seconds": 300.0,
        }
    )
    with serve(create_app(MarketData.from_settings(fast))) as base:
        yield base


@pytest.fixture
def url(served: str) -> str:
    """The same app as the browser sees it."""
    return served.replace("127.0.0.1", HOST)


Opener = Callable[[str], tuple[Page, list[str]]]


@pytest.fixture
def open_page(browser: Browser, url: str) -> Iterator[Opener]:
    """Opens a new page at ``url + path``; gives it, and the URL of every request it makes.
    The pages close before the server stops, which would otherwise wait on their streams."""
    opened: list[Page] = []

    def open_(path: str) -> tuple[Page, list[str]]:
        page = browser.new_page(locale="en-US", viewport={"width": 1280, "height": 1000})
        opened.append(page)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(url + path)
        return page, requested

    yield open_
    for page in opened:
        page.close()


def assert_nothing_left_the_app(requested: list[str], url: str) -> None:
    origin = urlsplit(url).netloc
    elsewhere = [
        u
        for u in requested
        if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != origin
    ]
    assert requested
    assert elsewhere == []


def get(base: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """(status, headers, body) of a GET, errors included."""
    request = urllib.request.Request(base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def as_shown(value: float) -> str:
    """A number as the page shows it in English (a price here has at most two decimals)."""
    return f"{value:,}".removesuffix(".0")


def as_js(value: float) -> str:
    """A number as JavaScript's String() writes it (the page's data attributes)."""
    return str(value).removesuffix(".0")


def path_price(sim: ExchangeSim) -> float:
    """BTC/USDT's price on the loopback exchange's candle path now, to a quarter."""
    market = sim.book.find("binance", "BTCUSDT", "spot")
    assert market is not None
    return round(sim.book.price_at(market, sim.book.now_ms())) + 0.25


def _add(a: int, b: int) -> int:
    return (a + b) & 0xFF


def png_colours(png: bytes) -> set[tuple[int, ...]]:
    """The distinct RGB colours of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: dict[bytes, list[bytes]] = {}
    at = 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        chunks.setdefault(png[at + 4 : at + 8], []).append(png[at + 8 : at + 8 + length])
        at += 12 + length
    width, height, depth, kind, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    assert (depth, interlace) == (8, 0)
    assert kind in (2, 6)
    size = 3 if kind == 2 else 4
    stride = width * size
    data = zlib.decompress(b"".join(chunks[b"IDAT"]))
    previous = bytearray(stride)
    colours: set[tuple[int, ...]] = set()
    for y in range(height):
        start = y * (stride + 1)
        kind_of_filter, row = data[start], bytearray(data[start + 1 : start + 1 + stride])
        if kind_of_filter == 1:  # Sub: a running sum along each channel
            for channel in range(size):
                summed: list[int] = list(accumulate(row[channel::size], _add))
                row[channel::size] = bytes(summed)
        elif kind_of_filter == 2:  # Up
            row = bytearray(map(_add, row, previous))
        elif kind_of_filter in (3, 4):  # Average, Paeth
            for x in range(stride):
                left = row[x - size] if x >= size else 0
                up = previous[x]
                if kind_of_filter == 3:
                    row[x] = (row[x] + (left + up) // 2) & 0xFF
                    continue
                corner = previous[x - size] if x >= size else 0
                guess = left + up - corner
                nearest = min(
                    (abs(guess - left), 0, left),
                    (abs(guess - up), 1, up),
                    (abs(guess - corner), 2, corner),
                )[2]
                row[x] = (row[x] + nearest) & 0xFF
        colours.update(tuple(row[x : x + 3]) for x in range(0, stride, size))
        previous = row
    return colours


def test_the_page_shows_tickers_a_chart_and_the_book_and_follows_them_from_the_app_alone(
    open_page: Opener, url: str, served: str, sim: ExchangeSim
) -> None:
    price = path_price(sim)
    sim.set_ticker("binance", "BTCUSDT", last=price, bid=price - 0.5, ask=price + 0.5)
    page, requested = open_page("/?exchange=binance&symbols=BTC/USDT,ETH/USDT&interval=0.5")

    expect(page.locator("#exchange option")).to_have_count(len(EXCHANGES))
    expect(page.locator("#exchange option").first).to_have_attribute("value", "binance")
    row = page.locator('tr[data-symbol="BTC/USDT"]')
    expect(row.locator("td").nth(1)).to_have_text(as_shown(price), timeout=10_000)
    expect(row.locator("td").nth(2)).to_have_text(as_shown(price - 0.5))
    expect(row.locator(".badge")).to_have_text("upstream")
    expect(page.locator("#status")).to_have_text("live: binance")
    expect(page.locator('tr[data-symbol="ETH/USDT"]')).to_be_visible()
    expect(page.locator("#market-title")).to_have_text("BTC/USDT on Binance")

    # The top of the book is what /orderbook answers.
    best_bid = page.locator("#levels tr").first.locator("td.bid")
    expect(best_bid).to_have_attribute("data-price", as_js(price - 0.5), timeout=10_000)
    expect(best_bid).to_have_text(as_shown(price - 0.5))
    status, _, body = get(served, "/orderbook/binance/BTC/USDT?depth=10")
    assert status == 200
    book = json.loads(body)
    for side in ("bid", "ask"):
        shown = page.locator(f"#levels td.{side}").evaluate_all(
            "cells => cells.map(cell => Number(cell.dataset.price))"
        )
        assert shown == [level[0] for level in book[f"{side}s"]]
    expect(page.locator("#spread")).to_have_text(as_shown(book["spread"]))

    # The candles are drawn: a canvas of some size, painted in both candle colours.
    close = page.locator("#legend [data-field=close]")
    expect(close).to_have_attribute("data-value", re.compile("."), timeout=10_000)
    canvas = page.locator("#chart canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None
    assert box["width"] > 200
    assert box["height"] > 200
    page.evaluate(
        "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )
    # (The element's own screenshot: its box is taken when the shot is, whatever moved since.)
    colours = png_colours(page.locator("#chart").screenshot())
    assert len(colours) > 16
    assert UP in colours
    assert DOWN in colours

    # The market moves: the table, the book and the open candle follow.
    moved = price + 7.25
    sim.set_ticker("binance", "BTCUSDT", last=moved, bid=moved - 0.5, ask=moved + 0.5)
    expect(row.locator("td").nth(1)).to_have_text(as_shown(moved), timeout=10_000)
    expect(row.locator("td").nth(1)).to_have_class("up")
    expect(row.locator("td").nth(7)).to_contain_text(" s")
    expect(row).to_have_class(re.compile(r"\bpicked\b"))
    expect(best_bid).to_have_attribute("data-price", as_js(moved - 0.5), timeout=10_000)
    expect(page.locator("#levels tr").first.locator("td.ask")).to_have_text(as_shown(moved + 0.5))
    expect(close).to_have_attribute("data-value", as_js(moved), timeout=10_000)

    assert_nothing_left_the_app(requested, url)
    charts = page_module.vendored(
        "lightweight-charts", "lightweight-charts.standalone.production.js"
    )
    assert f"{url}/{charts}" in requested


def test_a_symbol_the_exchange_does_not_list_shows_the_problems_reason(
    open_page: Opener, url: str, served: str
) -> None:
    expected = {}
    for endpoint in ("historical", "orderbook"):
        status, headers, body = get(served, f"/{endpoint}/binance/NOPE/USDT")
        assert (status, headers["Content-Type"]) == (404, "application/problem+json")
        problem = json.loads(body)
        expected[endpoint] = f"{problem['code']}: {problem['detail']}"
    page, requested = open_page("/?exchange=binance&symbols=NOPE/USDT")

    expect(page.locator("#chart-problem")).to_have_text(expected["historical"], timeout=10_000)
    expect(page.locator("#book-problem")).to_have_text(expected["orderbook"], timeout=10_000)
    expect(page.locator("#rows")).to_contain_text("binance has no market 'NOPE/USDT'")
    expect(page.locator("#chart")).to_be_hidden()
    expect(page.locator("#book")).to_be_hidden()
    assert_nothing_left_the_app(requested, url)


def test_the_docs_are_swagger_ui_from_the_apps_own_files(open_page: Opener, url: str) -> None:
    page, requested = open_page("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text(
        "Market data proxy", timeout=10_000
    )
    operation = page.locator('.opblock-summary-path[data-path="/orderbook/{exchange}/{symbol}"]')
    expect(operation).to_be_visible()
    icon = page.locator("link[rel='shortcut icon']").get_attribute("href")
    assert icon is not None
    assert icon.startswith("data:image/png;base64,")
    assert_nothing_left_the_app(requested, url)
    bundle = page_module.vendored("swagger-ui-dist", "swagger-ui-bundle.js")
    assert f"{url}/{bundle}" in requested


def test_the_vendored_files_are_npms_and_browsers_keep_them_for_good(served: str) -> None:
    script = "/" + page_module.vendored(
        "lightweight-charts", "lightweight-charts.standalone.production.js"
    )
    status, headers, _ = get(served, script)
    assert status == 200
    assert headers["Cache-Control"] == page_module.FOREVER
    assert headers["Content-Type"].startswith("text/javascript")
    status, headers, _ = get(served, script, {"If-None-Match": headers["ETag"]})
    assert (status, headers["Cache-Control"]) == (304, page_module.FOREVER)
    assert get(served, "/static/vendor/manifest.json")[0] == 404
    assert get(served, "/static/index.html")[0] == 404

    vendor = page_module.VENDOR
    manifest = json.loads((vendor / "manifest.json").read_text())
    for entry in manifest.values():
        for name, digest in entry["files"].items():
            content = (vendor / entry["directory"] / name).read_bytes()
            assert hashlib.sha256(content).hexdigest() == digest, name
    shipped = {p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file()}
    listed = {f"{e['directory']}/{name}" for e in manifest.values() for name in e["files"]}
    assert shipped == listed | {"manifest.json", "README.md"}
