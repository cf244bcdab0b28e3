"""OHLCV history: requests planned (``query``), candles kept in buckets (``buckets``), and
the store that answers from them and fetches what is missing (``store``)."""

from market_proxy.candles.buckets import BUCKET_CANDLES
from market_proxy.candles.query import CandleQuery, plan
from market_proxy.candles.store import CandleStore

__all__ = ["BUCKET_CANDLES", "CandleQuery", "CandleStore", "plan"]
