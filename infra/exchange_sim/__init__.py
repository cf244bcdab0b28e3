"""A loopback exchange answering in Binance's and Kraken's real wire formats (see README)."""

from infra.exchange_sim.control import SimControl
from infra.exchange_sim.server import CallRecord, ExchangeSim

__all__ = ["CallRecord", "ExchangeSim", "SimControl"]
