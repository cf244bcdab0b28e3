"""ApiFunction under SnapStart: the hooks it gives the runtime, run as Lambda runs them.

Lambda's Python runtime calls what ``snapshot_restore_py`` holds: the before-snapshot hooks
once, after init, when a version is published; the after-restore hooks in every container
restored from that snapshot. The same library drives them here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

import pytest
import snapshot_restore_py

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import DynamoDBLocal
from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.dynamodb_faults import dynamodb_fault_proxy
from tests.support.lambda_module import cold_starts

pytestmark = pytest.mark.e2e


@contextmanager
def publish(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[ModuleType]:
    """ApiFunction's module after init, as Lambda publishes a version: hooks registered."""
    snapshot_restore_py.get_before_snapshot().clear()
    snapshot_restore_py.get_after_restore().clear()
    try:
        with cold_starts(monkeypatch) as start:
            yield start("api_handler", settings)
    finally:
        snapshot_restore_py.get_before_snapshot().clear()
        snapshot_restore_py.get_after_restore().clear()


@pytest.fixture
def published(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, sim: ExchangeSim
) -> Iterator[ModuleType]:
    with publish(monkeypatch, settings) as module:
        yield module


Hooks = list[tuple[Callable[..., object], tuple[object, ...], dict[str, object]]]


def run_hooks(hooks: Hooks) -> None:
    for hook, args, kwargs in hooks:
        hook(*args, **kwargs)


def test_init_registers_one_hook_for_the_snapshot_and_one_for_each_restore(
    published: ModuleType,
) -> None:
    assert len(snapshot_restore_py.get_before_snapshot()) == 1
    assert len(snapshot_restore_py.get_after_restore()) == 1


def test_the_snapshot_holds_markets_but_no_open_connection(
    published: ModuleType, sim: ExchangeSim
) -> None:
    run_hooks(snapshot_restore_py.get_before_snapshot())

    gateway = published.service._gateway
    for exchange in ("binance", "kraken"):
        client = gateway.client(exchange)
        assert client.markets, exchange
        assert client.session is None, f"{exchange}: a session would be dead after a restore"
    assert sim.calls("binance", "markets") > 0


def test_the_snapshot_holds_the_mcp_endpoint_built(published: ModuleType) -> None:
    from starlette.routing import Route

    run_hooks(snapshot_restore_py.get_before_snapshot())

    (mcp,) = [r for r in published.app.router.routes if getattr(r, "path", None) == "/mcp"]
    assert isinstance(mcp, Route)
    built = mcp.endpoint.built  # type: ignore[attr-defined]
    assert built is not None
    assert built.service is published.service


def test_the_snapshot_holds_no_open_connection_to_the_table(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    sim: ExchangeSim,
    dynamodb_local: DynamoDBLocal,
) -> None:
    # Given a function whose table is reached through a proxy that counts connections,
    with (
        dynamodb_fault_proxy(dynamodb_local.endpoint) as proxy,
        publish(
            monkeypatch, settings.model_copy(update={"dynamodb_endpoint_url": proxy.url})
        ) as module,
    ):
        # when Lambda runs the hooks before the snapshot (which read and write the table:
        # markets snapshots),
        run_hooks(snapshot_restore_py.get_before_snapshot())
        assert {"GetItem", "PutItem"} <= set(proxy.operations())

        # then every connection to the table is closed,
        deadline = time.monotonic() + 5
        while proxy.open_connections() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proxy.open_connections() == 0

        # and a restored container opens new ones and answers from the table.
        run_hooks(snapshot_restore_py.get_after_restore())
        first = module.handler(rest_event("/ticker/binance/BTC-USDT"), LambdaContext())
        module.service._memory.clear()
        second = module.handler(rest_event("/ticker/binance/BTC-USDT"), LambdaContext())
        assert (first["statusCode"], second["statusCode"]) == (200, 200)
        assert second["headers"]["x-cache"] == "l2"
        assert proxy.open_connections() > 0


def test_a_restored_container_answers_on_new_connections_without_loading_markets_again(
    published: ModuleType, sim: ExchangeSim
) -> None:
    run_hooks(snapshot_restore_py.get_before_snapshot())
    markets_calls = sim.calls(endpoint="markets")
    owner_in_snapshot = published.service._leases.owner

    run_hooks(snapshot_restore_py.get_after_restore())
    sim.set_ticker("binance", "BTCUSDT", last=64000.5, bid=64000.0, ask=64001.0)
    response = published.handler(rest_event("/ticker/binance/BTC-USDT"), LambdaContext())

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["last"] == 64000.5
    assert sim.calls(endpoint="markets") == markets_calls
    client = published.service._gateway.client("binance")
    assert client.session is not None
    assert not client.session.closed
    # Containers restored from one snapshot must not share a lease identity.
    assert published.service._leases.owner != owner_in_snapshot


def test_an_exchange_that_fails_before_the_snapshot_does_not_stop_it(
    published: ModuleType, sim: ExchangeSim
) -> None:
    sim.inject("binance", "503", endpoint="markets", times=10)

    run_hooks(snapshot_restore_py.get_before_snapshot())
    run_hooks(snapshot_restore_py.get_after_restore())
    response = published.handler(rest_event("/ticker/kraken/XBTUSDT"), LambdaContext())

    assert response["statusCode"] == 200
    assert not published.service._gateway.client("binance").markets
