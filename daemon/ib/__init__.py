"""The IB adapter: the only product package that imports ib_insync (issue #5)."""

from tradectl.ib.adapter import (
    CRASH_ENV,
    AccountRefused,
    AdapterError,
    BrokerState,
    ConnectionSettings,
    GatewayUnreachable,
    IbAdapter,
    Progress,
    check_account,
)

__all__ = [
    "CRASH_ENV",
    "AccountRefused",
    "AdapterError",
    "BrokerState",
    "ConnectionSettings",
    "GatewayUnreachable",
    "IbAdapter",
    "Progress",
    "check_account",
]
