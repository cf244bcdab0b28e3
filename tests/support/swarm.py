"""One process of a swarm: at an agreed instant, N concurrent requests for one ticker.

Run as ``python -m tests.support.swarm EXCHANGE SYMBOL N START_AT`` with the service's
settings in the environment; prints one JSON line of the answers' sources.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from market_proxy.service import MarketData
from market_proxy.settings import Settings


async def main(exchange: str, symbol: str, count: int, start_at: float) -> None:
    service = MarketData.from_settings(Settings.from_env())
    try:
        await service.gateway.venue(exchange)  # markets, from the snapshot
        await asyncio.sleep(max(0.0, start_at - time.time()))
        answers = await asyncio.gather(*(service.ticker(exchange, symbol) for _ in range(count)))
    finally:
        await service.close()
    print(json.dumps({"sources": [a.cached.source for a in answers]}), flush=True)


if __name__ == "__main__":
    exchange, symbol, count, start_at = sys.argv[1:5]
    asyncio.run(main(exchange, symbol, int(count), float(start_at)))
