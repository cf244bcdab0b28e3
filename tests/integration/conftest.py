from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from market_proxy.service import MarketData
from market_proxy.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[MarketData]:
    """The service as a Lambda container builds it, on DynamoDB Local and the loopback exchange."""
    market = MarketData.from_settings(settings)
    yield market
    await market.close()
