"""The IB adapter: the only product package that imports ib_insync (issue #5)."""

from tradectl.broker_types import BrokerState, Progress
from tradectl.ib.adapter import (
    AccountRefused,
    AdapterError,
    ConnectionSettings,
    GatewayUnreachable,
    IbAdapter,
    check_account,
)

__all__ = [
    "AccountRefused",
    "AdapterError",
    "BrokerState",
    "ConnectionSettings",
    "GatewayUnreachable",
    "IbAdapter",
    "Progress",
    "check_account",
]
