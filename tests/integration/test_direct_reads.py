"""Reads spoken on the wire directly (``market_proxy.cache.direct``) answer what boto3
answers, are signed as AWS requires, and survive what a network does to kept-alive
connections; against DynamoDB Local, through the loopback fault proxy where the wire is
watched or damaged. How they fail when the table does is pinned, for both paths, in
test_dynamodb_faults.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from infra.local.dynamodb import DynamoDBLocal, local_client
from market_proxy.cache.direct import DirectReads
from market_proxy.cache.dynamodb import DynamoDBStore, make_store
from market_proxy.cache.entry import Entry
from market_proxy.cache.store import CacheUnavailable
from market_proxy.settings import DataPolicy, Settings
from tests.support.dynamodb_faults import BAD_CRC, DynamoDBFaultProxy, dynamodb_fault_proxy
from tests.support.sigv4 import verify

pytestmark = pytest.mark.integration

ITEMS: list[dict[str, Any]] = [
    {
        "pk": {"S": "every-kind"},
        "text": {"S": "ünïcode ✓"},
        "number": {"N": "-12.5e3"},
        "blob": {"B": bytes(range(256))},
        "blobs": {"BS": [b"\x00\x01", b"\xff"]},
        "texts": {"SS": ["a", "b"]},
        "numbers": {"NS": ["1", "2.5"]},
        "flag": {"BOOL": True},
        "nothing": {"NULL": True},
        "map": {"M": {"inner": {"B": b"\x10\x20"}, "list": {"L": [{"B": b"\x30"}, {"N": "7"}]}}},
    },
    {"pk": {"S": "plain"}, "payload": {"S": "{}"}, "fetched_at": {"N": "1764000000000"}},
]


@pytest.fixture
def proxy(dynamodb_local: DynamoDBLocal) -> Iterator[DynamoDBFaultProxy]:
    with dynamodb_fault_proxy(dynamodb_local.endpoint, stall_s=2.0) as proxy:
        yield proxy


def filled(endpoint: str, table: str) -> Any:
    client: Any = local_client(endpoint)
    for item in ITEMS:
        client.put_item(TableName=table, Item=item)
    return client


def direct_reads(endpoint: str) -> DirectReads:
    # DynamoDB Local runs with -sharedDb: any key reads the same tables.
    return DirectReads(endpoint, "us-east-1", Credentials("local", "local"), timeout_s=2.0)


def store_at(settings: Settings, endpoint: str) -> DynamoDBStore:
    return make_store(
        settings.model_copy(
            update={"dynamodb_endpoint_url": endpoint, "dynamodb_calls_on_loop": True}
        )
    )


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in response.items() if name != "ResponseMetadata"}


@pytest.mark.parametrize("consistent", [False, True])
def test_get_item_answers_exactly_what_boto3_answers_for_every_attribute_kind(
    dynamodb_local: DynamoDBLocal, table: str, consistent: bool
) -> None:
    client = filled(dynamodb_local.endpoint, table)
    direct = direct_reads(dynamodb_local.endpoint)
    for key in ("every-kind", "plain", "no-such-key"):
        request = {"TableName": table, "Key": {"pk": {"S": key}}, "ConsistentRead": consistent}
        assert direct.call("get_item", request) == without_metadata(client.get_item(**request))


def test_batch_get_item_answers_exactly_what_boto3_answers(
    dynamodb_local: DynamoDBLocal, table: str
) -> None:
    client = filled(dynamodb_local.endpoint, table)
    direct = direct_reads(dynamodb_local.endpoint)
    keys = [{"pk": {"S": key}} for key in ("every-kind", "plain", "no-such-key")]
    request = {"RequestItems": {table: {"Keys": keys}}}

    by_direct = direct.call("batch_get_item", request)
    by_boto3 = without_metadata(client.batch_get_item(**request))

    def by_key(response: dict[str, Any]) -> dict[str, Any]:
        return {item["pk"]["S"]: item for item in response["Responses"][table]}

    assert by_key(by_direct) == by_key(by_boto3)
    assert len(by_key(by_direct)) == 2
    assert by_direct["UnprocessedKeys"] == by_boto3["UnprocessedKeys"] == {}


def test_reads_are_signed_with_the_runtimes_credentials_session_token_included(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, proxy: DynamoDBFaultProxy
) -> None:
    # Given the credentials Lambda hands a function (a session's, with its token),
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example/secret/key+0001")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "IQoJb3JpZ2luX2VjEXAMPLETOKEN//0001")
    store = store_at(settings, proxy.url)
    entry = Entry.create("ticker#binance#BTC/USDT", {"last": 1.0}, DataPolicy(fresh_s=60), 0)

    # when the store writes an item (through boto3) and reads it back (directly),
    asyncio.run(store.put(entry))
    stored = asyncio.run(store.get(entry.key))
    many = asyncio.run(store.get_many([entry.key]))

    # then the reads found it,
    assert stored is not None
    assert stored.entry is not None
    assert stored.entry.payload == {"last": 1.0}
    assert set(many) == {entry.key}
    # and every request, boto3's and the direct ones alike, carries a valid signature by
    # that key, in the table's region, with the session's token sent and signed.
    received = proxy.received()
    assert [r.operation for r in received] == ["PutItem", "GetItem", "BatchGetItem"]
    for request in received:
        signed = verify(request.headers, request.body, secret_key="example/secret/key+0001")
        assert (signed.access_key, signed.region, signed.service) == (
            "ASIAEXAMPLEKEYID0001",
            "us-east-1",
            "dynamodb",
        )
        assert request.headers["x-amz-security-token"] == "IQoJb3JpZ2luX2VjEXAMPLETOKEN//0001"
        assert "x-amz-security-token" in signed.signed_headers
        assert "x-amz-target" in signed.signed_headers
    # The check itself refuses a request altered after signing, or signed by another key.
    read = received[1]
    with pytest.raises(AssertionError, match="does not match"):
        verify(
            read.headers, read.body.replace(b"BTC", b"ETH"), secret_key="example/secret/key+0001"
        )
    with pytest.raises(AssertionError, match="does not match"):
        verify(read.headers, read.body, secret_key="another-secret")


def test_a_kept_alive_connection_the_table_dropped_is_replaced_without_a_retry(
    dynamodb_local: DynamoDBLocal, table: str, proxy: DynamoDBFaultProxy
) -> None:
    # Given a table that closes every connection once it has answered, without saying so,
    filled(dynamodb_local.endpoint, table)
    proxy.drop_idle = True
    waits: list[float] = []
    direct = DirectReads(
        proxy.url, "us-east-1", Credentials("local", "local"), timeout_s=2.0, sleep=waits.append
    )
    request = {"TableName": table, "Key": {"pk": {"S": "plain"}}}

    # when three reads follow one another, each on a connection closed under it,
    answers = [direct.call("get_item", request) for _ in range(3)]

    # then each is answered with one request and no retry (no back-off waited): a dropped
    # idle connection is replaced at once, not counted as a failed attempt.
    assert all(answer["Item"]["pk"] == {"S": "plain"} for answer in answers)
    assert proxy.calls("GetItem") == 3
    assert waits == []


def test_an_answer_damaged_in_transit_is_asked_again_then_refused(
    settings: Settings, proxy: DynamoDBFaultProxy
) -> None:
    # Given a table whose answers to GetItem arrive with a CRC32 that does not match,
    store = store_at(settings, proxy.url)
    proxy.fail(BAD_CRC, "GetItem")

    # when the store reads,
    with pytest.raises(CacheUnavailable) as refused:
        asyncio.run(store.get("ticker#binance#ETH/USDT"))

    # then it asked twice, as botocore does, and refused the damaged answer.
    assert proxy.calls("GetItem") == 2
    assert refused.value.reason == "CRC32Mismatch"
    assert refused.value.store_wide
