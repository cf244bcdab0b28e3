"""What integration and end-to-end tests stand on: DynamoDB Local, tables from the template,
the loopback exchange, and settings that point the service at both."""

from __future__ import annotations

import uuid
from typing import Any

from infra.exchange_sim import ExchangeSim
from infra.exchange_sim.market_data import SUPPORTED
from infra.local.dynamodb import local_client
from infra.local.template import create_table
from market_proxy.settings import Settings

# The exchanges the service is configured with in tests: every wire format the loopback
# exchange speaks.
EXCHANGES = SUPPORTED


def new_table(endpoint: str) -> str:
    """A fresh cache table, exactly as template.yaml defines it."""
    name = f"cache-{uuid.uuid4().hex[:12]}"
    create_table(local_client(endpoint), name)
    return name


def drop_table(endpoint: str, name: str) -> None:
    client: Any = local_client(endpoint)
    client.delete_table(TableName=name)


def settings_for(endpoint: str, table: str, sim: ExchangeSim, **overrides: Any) -> Settings:
    """Settings that a deployed function would read from its environment, for this stack."""
    values: dict[str, Any] = {
        "table_name": table,
        "dynamodb_endpoint_url": endpoint,
        "exchanges": EXCHANGES,
        # On loopback, closing a client need not wait for TLS connections to drain, and
        # ccxt's limiter (on, as deployed) need not space calls to a loopback server out by
        # the real exchange's rate (Kraken's is a second a call).
        "exchange_options": {
            exchange: {**sim.ccxt_options(exchange), "timeout_on_exit": 0, "rateLimit": 1}
            for exchange in EXCHANGES
        },
        # Generous: the loopback exchange shares this process with the tests, so a busy
        # machine slows it; cases about timeouts set their own.
        "upstream_timeout_ms": 5000,
    }
    values.update(overrides)
    return Settings(**values)


def environment_for(settings: Settings) -> dict[str, str]:
    """The same settings as the environment variables a Lambda function would get."""
    import json

    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, dict):
            text = json.dumps(value)
        elif isinstance(value, tuple | list):
            text = ",".join(value)
        else:
            text = str(value)
        env[name.upper()] = text
    return env
