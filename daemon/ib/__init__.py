"""The IB adapter: the only product package that imports ib_insync (issue #5)."""

from tradectl.ib.lean_import import import_ib_insync_without_numpy

# Before any module of this package imports ib_insync (lean_import.py says why).
import_ib_insync_without_numpy()

from tradectl.broker_types import BrokerState, Progress  # noqa: E402
from tradectl.ib.adapter import (  # noqa: E402
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
