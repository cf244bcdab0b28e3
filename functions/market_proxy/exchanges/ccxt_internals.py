"""Every use of ccxt beyond its unified API, in one place.

What is relied on (pinned by ``pyproject.toml``'s ccxt range, and checked by
``tests/unit/test_ccxt_contract.py``, which fails when a ccxt release changes it):

- ``on_rest_response(code, reason, url, method, headers, body, ...)`` is called just before
  the body of an HTTP answer is parsed, and ``parse_json(text)`` parses it;
- ``set_markets(markets, currencies)`` installs markets as ``load_markets`` would, and
  ``options['marketHelperProps']`` names the options ``load_markets`` fills besides them;
- ``last_response_headers`` holds the headers of the last answer received.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# ccxt market fields never read when fetching market data; dropping them keeps the markets
# snapshot small (Binance's raw `info` alone is most of its megabytes).
_SNAPSHOT_DROP = ("info",)


def strict_json(client: Any) -> None:
    """Make an answer whose body looks like JSON but does not parse, or a successful answer
    that is a page of HTML (a captive portal, a CDN's page sent as a 200), an error
    (``BadResponse``).

    ccxt reads such a body as no body at all, and its parsers then build a ticker of nulls
    or an empty page of candles, which the cache would keep as a known gap in history. Only
    the body of an HTTP answer is judged so: ccxt calls ``on_rest_response`` just before
    parsing it (synchronously, so no other request comes between), while exchange code
    that parses JSON embedded in fields keeps ccxt's lenient reading. An HTML page with an
    error status is left to ccxt, which maps the status (a 503 stays "unavailable").
    """
    from ccxt.base.errors import BadResponse

    decode, lenient, received = client.on_json_response, client.parse_json, client.on_rest_response
    answer_status: int | None = None

    def on_rest_response(code: Any, *args: Any) -> Any:
        nonlocal answer_status
        answer_status = int(code) if str(code).isdigit() else 0
        return received(code, *args)

    def parse_json(text: Any) -> Any:
        nonlocal answer_status
        status, answer_status = answer_status, None
        if status is None:
            return lenient(text)
        if isinstance(text, str) and text[:1] in ("{", "["):
            try:
                return decode(text)
            except ValueError:
                raise BadResponse(f"{client.id} sent malformed JSON") from None
        if 200 <= status < 300 and isinstance(text, str) and text[:1] == "<":
            raise BadResponse(f"{client.id} sent a page of HTML")
        return None

    client.on_rest_response = on_rest_response
    client.parse_json = parse_json


def markets_snapshot(client: Any) -> dict[str, Any]:
    """What a new container needs to skip ``load_markets``: markets, currencies, helpers."""
    markets = [
        {k: v for k, v in market.items() if k not in _SNAPSHOT_DROP}
        for market in client.markets.values()
    ]
    currencies = {
        code: {k: v for k, v in currency.items() if k not in _SNAPSHOT_DROP}
        for code, currency in (client.currencies or {}).items()
    }
    helpers = {
        name: client.options[name]
        for name in client.options.get("marketHelperProps", [])
        if client.options.get(name) is not None
    }
    return {"markets": markets, "currencies": currencies, "helpers": helpers}


def restore_markets(client: Any, snapshot: Mapping[str, Any]) -> None:
    """Install a :func:`markets_snapshot` as if ``load_markets`` had run."""
    client.set_markets(snapshot["markets"], snapshot.get("currencies") or None)
    client.options.update(snapshot.get("helpers") or {})


def last_headers(client: Any) -> Mapping[str, str] | None:
    """The headers of the last answer the client received."""
    headers: Mapping[str, str] | None = client.last_response_headers
    return headers
