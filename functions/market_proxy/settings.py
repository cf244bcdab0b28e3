"""The one settings model. It is read from the environment once, at cold start.

Nothing else in the code base reads ``os.environ``: handlers build :class:`Settings` with
:meth:`Settings.from_env` and pass it down; tests build it directly.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_MIB = 1024 * 1024
# What EXCHANGE_LIMITS may state for an exchange (see limits.py and exchanges/signals.py).
_LIMIT_KEYS = frozenset(
    {
        "per_second",
        "requests_per_second",
        "lease",
        "reserve",
        "weight_header",
        "weight_limit",
        "weight_window_s",
    }
)
# The most an exchange's answers to one call may hold together, per kind of call: a ticker
# is a few hundred bytes, every ticker of an exchange a few megabytes, Binance's markets
# (every answer of the download together) about twenty. What ccxt parses out of JSON takes
# ten to twenty times its size in memory: these keep the worst case under the API
# function's 1,024 MB.
ANSWER_CAPS: dict[str, int] = {
    "ticker": 1 * _MIB,
    "funding": 1 * _MIB,
    "orderbook": 8 * _MIB,
    "trades": 8 * _MIB,
    "ohlcv": 8 * _MIB,
    "tickers": 8 * _MIB,
    "markets": 40 * _MIB,
    "other": 8 * _MIB,
}


class DataPolicy(BaseModel):
    """How long one kind of data is fresh, and how long past that it may still be served.

    ``swr`` (stale-while-revalidate): a stale value is answered at once while one caller
    refreshes it. ``sie`` (stale-if-error): a stale value is answered, marked, when the
    exchange fails. Both windows count from the end of freshness.
    """

    model_config = ConfigDict(frozen=True)

    fresh_s: float = Field(gt=0)
    swr_s: float = Field(default=0.0, ge=0)
    sie_s: float = Field(default=0.0, ge=0)


# The most symbols TICKERS_MAX_SYMBOLS may allow in one request (a query string has room).
TICKERS_MOST = 200


class Settings(BaseModel):
    """Every knob of the service. Environment names are the field names upper-cased."""

    model_config = ConfigDict(frozen=True)

    # Where the cache lives.
    table_name: str = "market-data-cache"
    dynamodb_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    dynamodb_timeout_s: float = Field(default=1.0, gt=0)
    # Call DynamoDB on the event loop's thread: only where one request is served at a time.
    dynamodb_calls_on_loop: bool = False

    # Which exchanges, and how ccxt talks to them.
    exchanges: tuple[str, ...] = ("binance", "kraken")
    # repr=False: it may hold credentials (apiKey, secret, auth headers), and a model's repr
    # ends up in tracebacks and debug output.
    exchange_options: dict[str, dict[str, Any]] = Field(default_factory=dict, repr=False)
    # One deadline for an upstream call: waiting for the budget and ccxt's limiter included.
    upstream_timeout_ms: int = Field(default=8000, ge=100, le=60000)
    # Most requests to one exchange waiting in a container's queues; past it, 503 at once.
    upstream_queue_max: int = Field(default=32, ge=1)
    # The longest Retry-After taken from an exchange (longer ones are cut to this).
    retry_after_max_seconds: float = Field(default=3600.0, gt=0)
    # The largest exchange answer read, in bytes, per kind of call (JSON, laid over these
    # defaults); a longer answer is unreadable (502) and nothing of it is kept.
    upstream_max_bytes: dict[str, int] = Field(default_factory=lambda: dict(ANSWER_CAPS))

    # Circuit breaker, per exchange and per container (see circuit.py).
    # CIRCUIT_FAILURE_THRESHOLD: upstream failures in a row (timeouts, 5xx, unreadable answers,
    # rate limits) that open the circuit, if they all fall within CIRCUIT_WINDOW_SECONDS.
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_window_seconds: float = Field(default=30.0, gt=0)
    # How long an open circuit refuses calls before letting one probe through; longer if the
    # exchange's Retry-After asks for more. A ban pauses for the ban's own Retry-After, or
    # this long when it gives none.
    circuit_cooldown_seconds: float = Field(default=30.0, gt=0)

    # A geo-block (451, "restricted location") lasts: the circuit stays open this long.
    circuit_geo_block_seconds: float = Field(default=3600.0, gt=0)

    # One upstream budget per exchange for the whole fleet (see budget.py). EXCHANGE_LIMITS
    # overrides ccxt's own rate per exchange: {"binance": {"per_second": 20, "lease": 4}}
    # in ccxt's cost units, or {"kraken": {"requests_per_second": 1}} counting requests;
    # "reserve": units of a second's budget background work may not use.
    fleet_budget: bool = True
    exchange_limits: dict[str, dict[str, int | float | str]] = Field(default_factory=dict)
    budget_lease_fraction: float = Field(default=0.2, gt=0, le=1)
    budget_reserve_fraction: float = Field(default=0.25, ge=0, lt=1)
    # While the table fails: each container's share of a window's budget, on its own.
    budget_fallback_share: float = Field(default=0.1, gt=0, le=1)
    # A key asked for in the last part of its freshness is refreshed ahead (0: never).
    refresh_ahead_fraction: float = Field(default=0.25, ge=0, lt=1)

    # After the table fails as a whole (unreachable, throttling, access denied), this
    # container leaves it alone this long and serves from memory and upstream.
    cache_store_backoff_seconds: float = Field(default=5.0, ge=0)

    # Freshness, per kind of data.
    ticker_ttl_seconds: float = Field(default=2.0, gt=0)
    ticker_swr_seconds: float = Field(default=10.0, ge=0)
    ticker_sie_seconds: float = Field(default=300.0, ge=0)
    orderbook_ttl_ms: int = Field(default=1000, ge=50)
    orderbook_swr_seconds: float = Field(default=2.0, ge=0)
    orderbook_sie_seconds: float = Field(default=30.0, ge=0)
    trades_ttl_seconds: float = Field(default=2.0, gt=0)
    trades_swr_seconds: float = Field(default=5.0, ge=0)
    trades_sie_seconds: float = Field(default=120.0, ge=0)
    funding_ttl_seconds: float = Field(default=30.0, gt=0)
    funding_swr_seconds: float = Field(default=30.0, ge=0)
    funding_sie_seconds: float = Field(default=900.0, ge=0)
    ohlcv_open_ttl_seconds: float = Field(default=10.0, gt=0)
    ohlcv_closed_ttl_seconds: float = Field(default=30 * 86400.0, gt=0)
    ohlcv_sie_seconds: float = Field(default=3600.0, ge=0)
    # How long after its close a candle is still taken as open to change (kept briefly).
    ohlcv_settle_seconds: float = Field(default=5.0, ge=0)
    # No page of history is asked for later than this into one request (a page then takes
    # up to UPSTREAM_TIMEOUT_MS more), so a long history answers before API Gateway's 29 s:
    # past it, what was fetched is kept and the client is told to ask again (504).
    ohlcv_walk_seconds: float = Field(default=15.0, gt=0)
    markets_ttl_seconds: float = Field(default=3600.0, gt=0)
    markets_snapshot_max_age_seconds: float = Field(default=86400.0, gt=0)
    negative_ttl_seconds: float = Field(default=60.0, ge=0)

    # Coalescing.
    lease_seconds: float = Field(default=5.0, gt=0)
    lease_wait_seconds: float = Field(default=3.0, ge=0)
    refresh_in_background: bool = False

    # Bounds on what one request may ask for.
    memory_cache_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    ohlcv_max_candles: int = Field(default=20000, ge=1)
    ohlcv_default_limit: int = Field(default=100, ge=1)
    # Order books are fetched this deep (one cache entry serves every smaller depth).
    orderbook_max_depth: int = Field(default=100, ge=1, le=1000)
    orderbook_default_depth: int = Field(default=20, ge=1)
    # Recent trades are fetched this many at a time; answers hold at most that many.
    trades_max_limit: int = Field(default=500, ge=1, le=1000)
    trades_default_limit: int = Field(default=50, ge=1)
    tickers_max_symbols: int = Field(default=50, ge=1, le=TICKERS_MOST)
    markets_max_limit: int = Field(default=500, ge=1)
    markets_default_limit: int = Field(default=100, ge=1)
    # MCP tools (POST /mcp): the most bytes one tool result takes as sent, its
    # structuredContent and the text block that repeats it both counted (so the data takes
    # a little under half). Rows past it (candles, trades, markets, tickers) are left out and
    # the result says so. 48 KiB is about 20,000 tokens, under what MCP clients take from
    # one tool (Claude Code: 25,000 by default).
    mcp_max_result_bytes: int = Field(default=49152, ge=1024)

    # Live streams (SSE).
    stream_interval_seconds: float = Field(default=1.0, gt=0)
    stream_min_interval_seconds: float = Field(default=0.5, gt=0)
    stream_max_interval_seconds: float = Field(default=60.0, gt=0)
    stream_heartbeat_seconds: float = Field(default=10.0, gt=0, le=15)
    stream_max_seconds: float = Field(default=840.0, gt=0)
    stream_retry_ms: int = Field(default=1000, ge=0)

    # Scheduled warming.
    warm_targets: str = ""
    warm_period_minutes: float = Field(default=1.0, gt=0)
    warm_concurrency: int = Field(default=4, ge=1, le=64)
    warm_candles: int = Field(default=200, ge=1)
    warm_top_keys: int = Field(default=20, ge=0)
    demand_flush_seconds: float = Field(default=60.0, ge=0)
    warm_ticker_loop_seconds: float = Field(default=0.0, ge=0)

    # Browsers on other origins (CORS): "*" or a comma-separated list; empty allows none.
    cors_allow_origins: tuple[str, ...] = ()

    # `make run`.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Set by `make run` only: logs may give hints that only make sense on a laptop.
    local_run: bool = False

    @field_validator("exchanges", mode="before")
    @classmethod
    def _split_exchanges(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip().lower() for part in value.split(",")]
        if isinstance(value, list | tuple):
            return tuple(dict.fromkeys(str(part) for part in value if part))
        return value

    @field_validator("exchanges")
    @classmethod
    def _known_exchanges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one exchange must be allow-listed")
        for exchange_id in value:
            if not exchange_id.isidentifier() or not exchange_id.islower():
                raise ValueError(f"{exchange_id!r} is not a ccxt exchange id")
        return value

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list | tuple):
            return tuple(dict.fromkeys(str(part) for part in value if part))
        return value

    @field_validator("upstream_max_bytes", mode="before")
    @classmethod
    def _over_answer_caps(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if isinstance(value, dict):
            value = {**ANSWER_CAPS, **value}
        return value

    def answer_cap(self, what: str) -> int:
        """The largest answer read for a call of kind ``what`` (``ANSWER_CAPS``' keys)."""
        return self.upstream_max_bytes.get(what, self.upstream_max_bytes["other"])

    @field_validator("exchange_options", "exchange_limits", mode="before")
    @classmethod
    def _parse_options(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        return value

    @field_validator("exchange_limits")
    @classmethod
    def _checked_limits(
        cls, value: dict[str, dict[str, int | float | str]]
    ) -> dict[str, dict[str, int | float | str]]:
        for exchange_id, given in value.items():
            if not exchange_id.isidentifier() or not exchange_id.islower():
                raise ValueError(f"{exchange_id!r} is not a ccxt exchange id")
            for name, setting in given.items():
                if name not in _LIMIT_KEYS:
                    raise ValueError(
                        f"{exchange_id}: {name!r} is not one of {', '.join(sorted(_LIMIT_KEYS))}"
                    )
                numeric = name != "weight_header"
                if numeric and (
                    isinstance(setting, bool | str)
                    or not math.isfinite(setting)
                    or setting < (0 if name == "reserve" else 1e-9)
                ):
                    raise ValueError(f"{exchange_id}: {name} must be a positive number")
                if not numeric and not isinstance(setting, str):
                    raise ValueError(f"{exchange_id}: weight_header must be a header's name")
        return value

    @property
    def ticker_policy(self) -> DataPolicy:
        return DataPolicy(
            fresh_s=self.ticker_ttl_seconds,
            swr_s=self.ticker_swr_seconds,
            sie_s=self.ticker_sie_seconds,
        )

    @property
    def orderbook_policy(self) -> DataPolicy:
        return DataPolicy(
            fresh_s=self.orderbook_ttl_ms / 1000,
            swr_s=self.orderbook_swr_seconds,
            sie_s=self.orderbook_sie_seconds,
        )

    @property
    def trades_policy(self) -> DataPolicy:
        return DataPolicy(
            fresh_s=self.trades_ttl_seconds,
            swr_s=self.trades_swr_seconds,
            sie_s=self.trades_sie_seconds,
        )

    @property
    def funding_policy(self) -> DataPolicy:
        return DataPolicy(
            fresh_s=self.funding_ttl_seconds,
            swr_s=self.funding_swr_seconds,
            sie_s=self.funding_sie_seconds,
        )

    @property
    def open_candles_policy(self) -> DataPolicy:
        return DataPolicy(fresh_s=self.ohlcv_open_ttl_seconds, sie_s=self.ohlcv_sie_seconds)

    @property
    def closed_candles_policy(self) -> DataPolicy:
        return DataPolicy(fresh_s=self.ohlcv_closed_ttl_seconds)

    @property
    def markets_policy(self) -> DataPolicy:
        return DataPolicy(
            fresh_s=self.markets_ttl_seconds,
            sie_s=max(0.0, self.markets_snapshot_max_age_seconds - self.markets_ttl_seconds),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read every field from its upper-cased environment variable, where set.

        Raises :class:`SettingsError` naming each bad variable, so a misconfigured function
        fails at cold start with a message an operator can act on.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for name in cls.model_fields:
            value = env.get(name.upper())
            if value is not None and value != "":
                raw[name] = value
        if "aws_region" not in raw and env.get("AWS_DEFAULT_REGION"):
            raw["aws_region"] = env["AWS_DEFAULT_REGION"]
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                for err in exc.errors()
            )
            # `from None`: pydantic's own message quotes the input, which may be a secret.
            raise SettingsError(f"invalid configuration: {problems}") from None


class SettingsError(ValueError):
    """The environment does not describe a valid configuration."""
