"""Event shapes AWS sends that are not API Gateway's."""

from __future__ import annotations

import time
import uuid
from typing import Any


def scheduled_event() -> dict[str, Any]:
    """What an EventBridge schedule rule delivers to its Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": [
            "arn:aws:events:us-east-1:123456789012:rule/market-data-proxy-WarmerFunctionWarm-1A2B3C4D5E6F"
        ],
        "detail": {},
    }
