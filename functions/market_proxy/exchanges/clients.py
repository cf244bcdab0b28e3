"""ccxt clients as configured, and the credentials in their configuration kept out of sight.

One ccxt async client per exchange per container, made here from ``EXCHANGE_OPTIONS``
deep-merged over the service's defaults (rate limiter on, ``UPSTREAM_TIMEOUT_MS``).
Credentials reach ccxt and nothing else: logs get ccxt's messages masked by :class:`Masker`,
ccxt's own request logging (which prints request headers) is kept below DEBUG, and its
``verbose`` mode (which prints them to stdout) is refused.
"""

from __future__ import annotations

import copy
import importlib
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from market_proxy.exchanges.answer_size import read_capped
from market_proxy.exchanges.ccxt_internals import strict_json
from market_proxy.observability import logger
from market_proxy.settings import Settings

# ccxt config keys whose values are secrets (ccxt's `requiredCredentials`), and keys whose
# values may embed them (a proxy URL's user:password, a private gateway's token).
_CREDENTIAL_KEYS = frozenset(
    {"apikey", "secret", "password", "uid", "login", "privatekey", "walletaddress", "token"}
    | {"twofa", "accountid"}
)
_PROXY_KEYS = frozenset(
    {"proxy", "proxyurl", "httpproxy", "httpsproxy", "socksproxy", "wsproxy", "wssproxy"}
    | {"aiohttp_proxy", "proxy_url", "http_proxy", "https_proxy", "socks_proxy"}
)
_SHORTEST_SECRET = 4  # shorter values would mask half of every message and hide nothing
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_MASK = "***"


def exchange_class(exchange_id: str) -> Any:
    """The ccxt async class for ``exchange_id``, or None (imports ccxt on first use)."""
    module = importlib.import_module("ccxt.async_support")
    return getattr(module, exchange_id, None)


def new_client(settings: Settings, exchange_id: str) -> Any:
    """A ccxt async client for ``exchange_id``, configured as ``EXCHANGE_OPTIONS`` says."""
    cls = exchange_class(exchange_id)
    if cls is None:
        raise LookupError(f"ccxt has no exchange {exchange_id!r}")
    config = deep_merge(
        {"enableRateLimit": True, "timeout": settings.upstream_timeout_ms},
        settings.exchange_options.get(exchange_id, {}),
    )
    if config.get("enableRateLimit") is not True:
        # The fleet's budget is spent in ccxt's throttle, which runs only with its limiter.
        logger.warning(
            "EXCHANGE_OPTIONS turns ccxt's rate limiter off, which the fleet's budget runs "
            "in; ignored",
            extra={"exchange": exchange_id},
        )
        config["enableRateLimit"] = True
    if config.pop("verbose", False):
        logger.warning(
            "EXCHANGE_OPTIONS asks for ccxt's verbose mode, which prints request headers "
            "(credentials included) to stdout; ignored",
            extra={"exchange": exchange_id},
        )
    _quiet_ccxt_logging()
    client = cls(config)
    strict_json(client)
    read_capped(client)
    return client


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        held = merged.get(key)
        if isinstance(held, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(held, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Masker:
    """Masks every credential configured in ``EXCHANGE_OPTIONS`` out of text for logs."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._secrets = tuple(sorted(set(secret_values(options)), key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """``text`` with every configured credential and any URL's user:password masked."""
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return _URL_USERINFO.sub(_MASK + "@", text)


def secret_values(options: Mapping[str, Any]) -> Iterator[str]:
    """Every credential found in ccxt options (``EXCHANGE_OPTIONS``), at any depth:
    values of credential and proxy keys, and every header value."""
    for key, value in options.items():
        name = str(key).lower()
        if isinstance(value, Mapping):
            if name == "headers":
                yield from (str(v) for v in value.values() if len(str(v)) >= _SHORTEST_SECRET)
            yield from secret_values(value)
        elif (name in _CREDENTIAL_KEYS or name in _PROXY_KEYS) and value:
            text = str(value)
            if len(text) >= _SHORTEST_SECRET:
                yield text


def _quiet_ccxt_logging() -> None:
    """ccxt logs every request's headers (an API key among them) at DEBUG: whatever level
    the process logs at (a Lambda function's log level can be set to DEBUG), not those."""
    ccxt_logger = logging.getLogger("ccxt")
    if ccxt_logger.level < logging.INFO:  # NOTSET too: it would follow the root logger down
        ccxt_logger.setLevel(logging.INFO)
