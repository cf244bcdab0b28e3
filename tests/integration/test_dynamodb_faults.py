"""When DynamoDB fails, requests still answer from the exchange, the failure is logged and
counted (``CacheStoreErrors``), and what it adds to a request's time is bounded.

The table is DynamoDB Local behind a loopback proxy that answers chosen operations with
DynamoDB's own error wire format, so botocore's parsing and retries run as against AWS.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal, free_port, local_client
from market_proxy.cache.client import make_store
from market_proxy.clock import now_ms
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.clock import SharedClock
from tests.support.dynamodb_faults import STALL, DynamoDBFaultProxy, dynamodb_fault_proxy
from tests.support.emf import log_records, metric_total
from tests.support.lambda_api import LambdaApi, lambda_api_on_new_table
from tests.support.output import captured

pytestmark = pytest.mark.integration

TIMEOUT_S = 0.3  # DYNAMODB_TIMEOUT_S of the containers under test
# One failing DynamoDB call: two attempts, each up to the connect and the read timeout,
# and botocore's jittered back-off of up to 1 s between them.
TABLE_WORST_S = 2 * (TIMEOUT_S + TIMEOUT_S) + 1.0
UPSTREAM_ALLOWANCE_S = 2.0  # markets and ticker from the loopback exchange, on a busy machine
STORE_FAILED = "cache store failed; carrying on without it"
DOWN = "endpoint_down"
# Each way the whole table can fail, and how many requests one failing call makes of it.
WHOLE_TABLE = {
    DOWN: 0,  # nothing listens
    "ProvisionedThroughputExceededException": 2,  # botocore retries throttling once
    "ThrottlingException": 2,
    "AccessDeniedException": 1,  # not retried
    STALL: 2,  # the read times out, and is retried once
}
REASONS = {DOWN: "EndpointConnectionError", STALL: "ReadTimeoutError"}


@pytest.fixture(scope="module")
def api(dynamodb_local: DynamoDBLocal, exchange_sim_session: ExchangeSim) -> Iterator[LambdaApi]:
    with lambda_api_on_new_table(dynamodb_local.endpoint, exchange_sim_session) as api:
        yield api


@pytest.fixture
def proxy(dynamodb_local: DynamoDBLocal) -> Iterator[DynamoDBFaultProxy]:
    with dynamodb_fault_proxy(dynamodb_local.endpoint, stall_s=2.0) as proxy:
        yield proxy


def container(api: LambdaApi, sim: ExchangeSim, endpoint: str) -> MarketData:
    """A new container whose table is reached at ``endpoint``."""
    settings: Settings = api.module.service.settings.model_copy(
        update={
            "dynamodb_endpoint_url": endpoint,
            "dynamodb_timeout_s": TIMEOUT_S,
        }
    )
    return api.container(settings, SharedClock(now_ms(), sim), own_store=True)


@pytest.mark.parametrize("fault", list(WHOLE_TABLE))
def test_a_table_failing_as_a_whole_costs_one_failed_call_and_tickers_still_answer(
    api: LambdaApi, sim: ExchangeSim, proxy: DynamoDBFaultProxy, fault: str
) -> None:
    # Given a container whose table fails on every operation,
    if fault == DOWN:
        container(api, sim, f"http://127.0.0.1:{free_port()}")
    else:
        container(api, sim, proxy.url)
        proxy.fail(fault)

    # when clients ask for two tickers (the first also needs the exchange's markets),
    with captured() as printed:
        started = time.monotonic()
        first = api.get("/ticker/binance/BTC-USDT")
        first_s = time.monotonic() - started
        second = api.get("/ticker/binance/ETH-USDT")

    # then both come from the exchange,
    assert (first.status, first.headers["x-cache"]) == (200, "upstream")
    assert (second.status, second.headers["x-cache"]) == (200, "upstream")
    # the first request paid for one failed table call at most, and the container then left
    # the table alone,
    assert first_s < TABLE_WORST_S + UPSTREAM_ALLOWANCE_S
    assert proxy.calls() == WHOLE_TABLE[fault]
    assert set(proxy.operations()) <= {"GetItem"}, "the first call made is a read"
    # and the failure was logged, with the reason, and counted once.
    records = log_records(printed.getvalue(), STORE_FAILED)
    assert [record["reason"] for record in records] == [REASONS.get(fault, fault)]
    assert records[0]["rest_s"] > 0
    assert metric_total(printed.getvalue(), "CacheStoreErrors") == 1


def test_an_entry_the_table_refuses_is_still_served_and_the_table_stays_in_use(
    api: LambdaApi, sim: ExchangeSim, proxy: DynamoDBFaultProxy
) -> None:
    # Given a table that takes everything but refuses to store tickers (as it refuses an
    # item over 400 KB),
    container(api, sim, proxy.url)
    proxy.fail("ValidationException", "PutItem")

    # when clients ask for two tickers,
    with captured() as printed:
        first = api.get("/ticker/binance/SOL-USDT")
        second = api.get("/ticker/binance/ETH-BTC")

    # then both are served from the exchange, each refusal is logged and counted, and the
    # table is still used for the second (this failure says nothing about the table),
    assert (first.status, first.headers["x-cache"]) == (200, "upstream")
    assert (second.status, second.headers["x-cache"]) == (200, "upstream")
    assert proxy.calls("PutItem") == 2, "each tried once: botocore does not retry a refusal"
    assert proxy.calls("GetItem") >= 2
    records = log_records(printed.getvalue(), STORE_FAILED)
    assert [record["reason"] for record in records] == ["ValidationException"] * 2
    assert [record["rest_s"] for record in records] == [0, 0]
    assert metric_total(printed.getvalue(), "CacheStoreErrors") == 2
    # and the refresh lease the put would have dropped does not hold other containers up.
    table = make_store(api.module.service.settings)
    stored = api.run(table.get("ticker#binance#SOL/USDT", consistent=True))
    assert stored is not None
    assert stored.lease_owner is None
    assert stored.entry is None


def test_the_proxy_refuses_a_put_exactly_as_dynamodb_refuses_an_item_over_400_kb(
    api: LambdaApi, dynamodb_local: DynamoDBLocal, proxy: DynamoDBFaultProxy
) -> None:
    table = api.module.service.settings.table_name
    item = {"pk": {"S": "too-big"}, "blob": {"B": bytes(410_000)}}
    proxy.fail("ValidationException", "PutItem")
    answers = []
    for endpoint in (dynamodb_local.endpoint, proxy.url):
        client: object = local_client(endpoint)
        with pytest.raises(ClientError) as refused:
            client.put_item(TableName=table, Item=item)  # type: ignore[attr-defined]
        answers.append(refused.value.response)
    real, played = answers
    assert played["Error"] == real["Error"]
    assert played["Error"]["Code"] == "ValidationException"
    status = [answer["ResponseMetadata"]["HTTPStatusCode"] for answer in answers]
    assert status == [400, 400]
