"""``POST /mcp``: the Model Context Protocol over Streamable HTTP, stateless, JSON responses.

Any container answers any call: no session is kept, nothing is started, there is no event
stream (``GET`` and ``DELETE`` answer 405, as the transport allows a server that offers
none). Each tool is an adapter over one :class:`~market_proxy.service.MarketData` call
(:mod:`.tools`); what a client asks goes through :mod:`.endpoint`, which serves
``tools/call`` itself and everything else through the SDK's own single-request kernel.

Importing this package costs nothing: the SDK takes more than a second to import, which the
REST routes' cold start must not pay. It is imported, and the tools built, on the first
``/mcp`` request of a container (off the event loop), or by :func:`preload` (for a SnapStart
snapshot's hook to call).
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Protocol

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from market_proxy.service import MarketData

PATH = "/mcp"
_ENDPOINT_MODULE = f"{__name__}.endpoint"


class _Endpoint(Protocol):
    service: MarketData

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class _Lazy:
    """The ``/mcp`` ASGI app: the endpoint of the app's service, built on first use.

    Rebuilt only when the app is given another service (tests give it new containers).
    """

    def __init__(self) -> None:
        self.built: _Endpoint | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service: MarketData = scope["app"].state.market
        endpoint = self.built
        if endpoint is None or endpoint.service is not service:
            async with self._lock:
                endpoint = self.built
                if endpoint is None or endpoint.service is not service:
                    # On a worker thread: under uvicorn the loop keeps serving meanwhile.
                    endpoint = await asyncio.to_thread(_build, service)
                    self.built = endpoint
        await endpoint(scope, receive, send)


def _build(service: MarketData) -> _Endpoint:
    module = importlib.import_module(_ENDPOINT_MODULE)
    endpoint: _Endpoint = module.Endpoint(service)
    return endpoint


def route() -> Route:
    """The ``/mcp`` route; POST only (Starlette answers other methods 405 with ``Allow``)."""
    return Route(PATH, endpoint=_Lazy(), methods=["POST"], name="mcp")


def preload(app: Starlette) -> None:
    """Import the SDK and build ``app``'s tools now, as its first ``/mcp`` request would: for
    a SnapStart snapshot, so that restored containers need not (about 1.4 s on the first
    request otherwise). Calls nothing upstream and opens no connection."""
    for found in app.router.routes:
        if isinstance(found, Route) and isinstance(found.endpoint, _Lazy):
            found.endpoint.built = _build(app.state.market)
