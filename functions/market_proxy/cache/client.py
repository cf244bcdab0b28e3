"""The one DynamoDB client: boto3's low-level client, configured to fail fast and run lean."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.config import Config

from market_proxy.cache.dynamodb import DynamoDBStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from market_proxy.settings import Settings


def make_store(settings: Settings) -> DynamoDBStore:
    """The store on ``TABLE_NAME``, as configured."""
    return DynamoDBStore(
        make_client(settings), settings.table_name, on_loop=settings.dynamodb_calls_on_loop
    )


def make_client(settings: Settings) -> DynamoDBClient:
    """A DynamoDB client that fails fast: the cache must never hold a request hostage.

    Two attempts in all (botocore's standard mode: it retries throttling after a jittered
    back-off of up to 1 s, connection errors and 5xx after up to 25 ms, and never a denial
    or a validation error). So one call that fails costs at most two attempts of
    ``DYNAMODB_TIMEOUT_S`` to connect and as much to read, plus that back-off: 5 s at the
    default timeout against an endpoint that hangs; under 1.1 s when it refuses or throttles;
    one round trip when it denies. After a failure of the whole table the service leaves it
    alone for ``CACHE_STORE_BACKOFF_SECONDS``, so a request pays this once at most.

    Lean, within boto3's documented options: the low-level client (no resource layer), no
    client-side parameter validation (every request is built by this package, and DynamoDB
    validates what it receives), kept-alive connections.
    """
    import boto3

    session = boto3.session.Session(region_name=settings.aws_region)
    local = settings.dynamodb_endpoint_url is not None and session.get_credentials() is None
    config = Config(
        connect_timeout=settings.dynamodb_timeout_s,
        read_timeout=settings.dynamodb_timeout_s,
        retries={"total_max_attempts": 2, "mode": "standard"},
        max_pool_connections=32,
        parameter_validation=False,
        tcp_keepalive=True,
    )
    return session.client(
        "dynamodb",
        endpoint_url=settings.dynamodb_endpoint_url,
        config=config,
        # A local DynamoDB accepts any key; AWS tooling still insists there is one.
        aws_access_key_id="local" if local else None,
        aws_secret_access_key="local" if local else None,  # nosec B106
    )
