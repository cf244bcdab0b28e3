"""``make run``: the service on a laptop, with an embedded DynamoDB unless one is configured.

The configuration is the functions' own (:class:`Settings`, from the environment). When
``DYNAMODB_ENDPOINT_URL`` is not set, moto's DynamoDB server starts in this process and the
cache table is created from ``template.yaml``. ``--simulate`` points every exchange at a
loopback exchange whose prices move, for a machine without internet or a demo.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import socket
import sys
from typing import Any

import uvicorn

from infra.local.dynamodb import EmbeddedMoto, local_client
from infra.local.template import create_table
from market_proxy.api.app import create_app
from market_proxy.service import MarketData
from market_proxy.settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="serve from a loopback exchange with moving prices instead of the real ones",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    try:
        listener = _listen(settings.host, settings.port)
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        reason = "is in use" if busy else f"cannot be listened on ({exc.strerror})"
        print(
            f"error: {settings.host}:{settings.port} {reason}; choose another with PORT= "
            "(e.g. PORT=8001 make run)",
            file=sys.stderr,
        )
        return 2

    with contextlib.ExitStack() as stack:
        stack.callback(listener.close)
        overrides: dict[str, Any] = {"refresh_in_background": True, "local_run": True}
        if settings.dynamodb_endpoint_url is None:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
            moto = stack.enter_context(EmbeddedMoto())
            create_table(local_client(moto.endpoint, settings.aws_region), settings.table_name)
            overrides["dynamodb_endpoint_url"] = moto.endpoint
        if args.simulate:
            overrides["exchange_options"] = stack.enter_context(_simulated(settings))
        settings = settings.model_copy(update=overrides)
        app = create_app(MarketData.from_settings(settings))
        port = listener.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        # The socket is listening already: connections wait in its backlog until uvicorn
        # accepts them, so the banner may promise the URL now.
        _banner(settings.model_copy(update={"port": port}), simulated=args.simulate)
        server.run(sockets=[listener])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, as uvicorn would open it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except OSError:
        listener.close()
        raise
    return listener


@contextlib.contextmanager
def _simulated(settings: Settings) -> Any:
    from infra.exchange_sim import ExchangeSim

    with ExchangeSim(walk=True) as sim:
        yield {exchange: sim.ccxt_options(exchange) for exchange in settings.exchanges}


def _banner(settings: Settings, *, simulated: bool) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        f"market data proxy on {base}",
        f"  exchanges   {', '.join(settings.exchanges)}" + ("  (simulated)" if simulated else ""),
        f"  cache       table {settings.table_name!r} at {settings.dynamodb_endpoint_url}",
        f"  try         {base}/ticker/{settings.exchanges[0]}/BTC/USDT",
        f"              {base}/historical/{settings.exchanges[0]}/BTC-USDT?timeframe=1m&limit=5",
        f"  API docs    {base}/docs  (OpenAPI: {base}/openapi.json)",
        f"  health      {base}/health?deep=true",
    ]
    print("\n".join(lines), flush=True)
    print(json.dumps({"url": base}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
