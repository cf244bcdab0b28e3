"""``python -m infra.exchange_sim``: serve the loopback exchange until interrupted."""

from __future__ import annotations

import argparse
import json
import signal
import threading

from infra.exchange_sim.market_data import SUPPORTED
from infra.exchange_sim.server import ExchangeSim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--walk", action="store_true", help="prices take a random walk")
    parser.add_argument("--synthetic-markets", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    args = parser.parse_args()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with ExchangeSim(
        port=args.port,
        walk=args.walk,
        synthetic_markets=args.synthetic_markets,
        latency_s=args.latency,
    ) as sim:
        options = {exchange: sim.ccxt_options(exchange) for exchange in SUPPORTED}
        print(json.dumps({"url": sim.url, "exchange_options": options}), flush=True)
        done.wait()


if __name__ == "__main__":
    main()
