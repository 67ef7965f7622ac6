"""The IB adapter: the only product package that imports ib_insync (issue #5).

The adapter's names load on first use (``__getattr__``): ``tradectl apply`` connects early
through ``tradectl.ib.early`` and ``tradectl.ib.link``, which must not wait for the adapter's
imports (the planner, the journal and the rule models) to start the connection."""

from typing import TYPE_CHECKING, Any

from tradectl.ib.lean_import import import_ib_insync_without_numpy

# Before any module of this package imports ib_insync (lean_import.py says why).
import_ib_insync_without_numpy()

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in ("BrokerState", "Progress"):
        from tradectl import broker_types

        return getattr(broker_types, name)
    if name in __all__:
        from tradectl.ib import adapter

        return getattr(adapter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
