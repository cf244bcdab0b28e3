"""A loopback exchange answering in the real wire formats of Binance, Kraken, Coinbase Exchange,
Bybit and OKX (see README)."""

from infra.exchange_sim.control import SimControl
from infra.exchange_sim.server import CallRecord, ExchangeSim

__all__ = ["CallRecord", "ExchangeSim", "SimControl"]
