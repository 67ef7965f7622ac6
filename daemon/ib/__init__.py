"""The IB adapter: the only product package that imports ib_insync (issue #5)."""

from tradectl.ib.lean_import import import_ib_insync_without_numpy

# Before any module of this package imports ib_insync (lean_import.py says why).
import_ib_insync_without_numpy()

from tradectl.ib.adapter import (  # noqa: E402
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
