"""ApiFunction's real handler, cold-started once, with a fresh container behind it per case.

Cold-starting the handler module for every case of a large matrix costs an import and a
markets download each time, and a module cannot be given a test's clock. A new container
is what a case needs: its own memory tier, exchange clients and circuit breakers, sharing
the table as Lambda containers do. :meth:`LambdaApi.container` builds one with the case's
settings and clock and puts it behind the same app, where the routes find their service.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from infra.exchange_sim import ExchangeSim
from infra.local.dynamodb import local_client
from market_proxy.keys import BudgetKey
from market_proxy.observability import flush_all_metrics
from market_proxy.service import MarketData
from market_proxy.settings import Settings
from tests.support.apigw import LambdaContext, rest_event
from tests.support.lambda_module import cold_starts
from tests.support.stack import EXCHANGES, drop_table, new_table, settings_for


@dataclass(frozen=True)
class Reply:
    """One answer of the handler, as API Gateway would pass it on."""

    status: int
    headers: dict[str, str]  # names lower-cased
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class LambdaApi:
    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.loop: asyncio.AbstractEventLoop = getattr(module, "loop", None) or (
            asyncio.get_event_loop()
        )
        self._containers: list[MarketData] = []

    def container(
        self, settings: Settings, clock: Callable[[], int], *, own_store: bool = False
    ) -> MarketData:
        """A new container with these settings and clock, now serving the handler.

        It shares the handler's DynamoDB client unless ``own_store`` asks for one made from
        ``settings`` (another endpoint, another timeout).
        """
        # Figures recorded outside any invocation (tests driving a service directly) would
        # be flushed with the next one's: they belong to no answer.
        with redirect_stdout(io.StringIO()):
            flush_all_metrics()
        if own_store:
            service = MarketData.from_settings(settings, clock)
        else:
            service = MarketData(settings, self.module.service._shared.usable, clock)
        self.module.app.state.market = service
        self._containers.append(service)
        return service

    def lift_pauses(self) -> None:
        """Forget every pause an earlier case made the fleet honour (the cases of a module
        share a table, as containers share it, and some make an exchange pause the fleet)."""
        client: Any = local_client(self.module.service.settings.dynamodb_endpoint_url or "")
        table = self.module.service.settings.table_name
        for exchange in EXCHANGES:
            client.delete_item(TableName=table, Key={"pk": {"S": BudgetKey(exchange).text}})

    def get(self, path: str, **event: Any) -> Reply:
        """Invoke the handler with API Gateway's REST event for ``GET path``."""
        response = self.module.handler(rest_event(path, **event), LambdaContext())
        assert response["isBase64Encoded"] is False
        headers = {name.lower(): value for name, value in (response["headers"] or {}).items()}
        return Reply(response["statusCode"], headers, response["body"])

    def run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the container's loop (where its clients' sessions live)."""
        return self.loop.run_until_complete(coroutine)

    def close_containers(self) -> None:
        """Close every container made so far, together: closing a ccxt client waits 250 ms."""
        containers, self._containers = self._containers, []

        async def close_all() -> None:
            await asyncio.gather(*(service.close() for service in containers))

        self.run(close_all())
        self.module.app.state.market = self.module.service


@contextmanager
def lambda_api(settings: Settings) -> Iterator[LambdaApi]:
    """Cold-start ApiFunction's handler module with ``settings`` (for a module's tests)."""
    with pytest.MonkeyPatch.context() as patch, cold_starts(patch) as start:
        api = LambdaApi(start("api_handler", settings))
        try:
            yield api
        finally:
            api.close_containers()


@contextmanager
def lambda_api_on_new_table(
    endpoint: str, sim: ExchangeSim, **settings: Any
) -> Iterator[LambdaApi]:
    """The handler on a table of its own that holds every exchange's markets snapshot, so
    that new containers start without downloading markets."""
    table = new_table(endpoint)
    try:
        with lambda_api(settings_for(endpoint, table, sim, **settings)) as api:
            service = api.module.service
            api.run(asyncio.gather(*(service.load_markets(exchange) for exchange in EXCHANGES)))
            yield api
    finally:
        drop_table(endpoint, table)
