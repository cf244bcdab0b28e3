"""ApiFunction under SnapStart: the hooks it gives the runtime, run as Lambda runs them.

Lambda's Python runtime calls what ``snapshot_restore_py`` holds: the before-snapshot hooks
once, after init, when a version is published; the after-restore hooks in every container
restored from that snapshot. The same library drives them here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
import snapshot_restore_py

from infra.exchange_sim import ExchangeSim
from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.lambda_module import cold_starts

pytestmark = pytest.mark.e2e


@pytest.fixture
def published(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, sim: ExchangeSim
) -> Iterator[ModuleType]:
    """ApiFunction's module after init, as Lambda publishes a version: hooks registered."""
    snapshot_restore_py.get_before_snapshot().clear()
    snapshot_restore_py.get_after_restore().clear()
    with cold_starts(monkeypatch) as start:
        yield start("api_handler", settings)
    snapshot_restore_py.get_before_snapshot().clear()
    snapshot_restore_py.get_after_restore().clear()


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

    gateway = published.service.gateway
    for exchange in ("binance", "kraken"):
        client = gateway.client(exchange)
        assert client.markets, exchange
        assert client.session is None, f"{exchange}: a session would be dead after a restore"
    assert sim.calls("binance", "markets") > 0


def test_a_restored_container_answers_on_new_connections_without_loading_markets_again(
    published: ModuleType, sim: ExchangeSim
) -> None:
    run_hooks(snapshot_restore_py.get_before_snapshot())
    markets_calls = sim.calls(endpoint="markets")
    owner_in_snapshot = published.service.cache._owner

    run_hooks(snapshot_restore_py.get_after_restore())
    sim.set_ticker("binance", "BTCUSDT", last=64000.5, bid=64000.0, ask=64001.0)
    response = published.handler(rest_event("/ticker/binance/BTC-USDT"), LambdaContext())

    assert response["statusCode"] == 200
    assert json.loads(response["body"])["last"] == 64000.5
    assert sim.calls(endpoint="markets") == markets_calls
    client = published.service.gateway.client("binance")
    assert client.session is not None
    assert not client.session.closed
    # Containers restored from one snapshot must not share a lease identity.
    assert published.service.cache._owner != owner_in_snapshot


def test_an_exchange_that_fails_before_the_snapshot_does_not_stop_it(
    published: ModuleType, sim: ExchangeSim
) -> None:
    sim.inject("binance", "503", endpoint="markets", times=10)

    run_hooks(snapshot_restore_py.get_before_snapshot())
    run_hooks(snapshot_restore_py.get_after_restore())
    response = published.handler(rest_event("/ticker/kraken/XBTUSDT"), LambdaContext())

    assert response["statusCode"] == 200
    assert not published.service.gateway.client("binance").markets
