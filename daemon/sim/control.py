"""The control surface of a running gateway: prices, matching and faults.

Methods run on the gateway's event loop (use ``SimThread.control`` from other
threads). :meth:`SimControl.apply` maps one JSON command such as
``{"op": "set_price", "symbol": "AAPL", "price": 190.0}`` onto the method of
the same name; the CLI feeds it from stdin and from ``--control-socket``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast, get_args

from daemon.sim.model import AccountSnapshot
from daemon.sim.state import MarketHoursMode

if TYPE_CHECKING:
    from daemon.sim.server import SimGateway

CONNECTIVITY_LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
CONNECTIVITY_RESTORED = (
    1102,
    "Connectivity between IB and Trader Workstation has been restored - data maintained.",
)


class SimControl:
    COMMANDS = frozenset(
        {
            "set_price",
            "set_hours",
            "step",
            "drop_connections",
            "refuse_connections",
            "reject_next_orders",
            "delay_acks",
            "connectivity_lost",
            "connectivity_restored",
            "snapshot",
        }
    )

    def __init__(self, gateway: SimGateway) -> None:
        self._gateway = gateway

    def set_price(self, symbol: str, price: float) -> None:
        """Move the last price (bid/ask follow), push ticks and re-run matching."""
        self._gateway.publish(self._gateway.engine.set_price(symbol, float(price)))

    def set_hours(self, hours: str) -> None:
        """Change the hours that contract details report from now on (``market.hours``)."""
        if hours not in get_args(MarketHoursMode):
            raise ValueError(f"hours must be one of {', '.join(get_args(MarketHoursMode))}")
        self._gateway.engine.state.market.hours = cast(MarketHoursMode, hours)

    def step(self) -> None:
        """Run one matching pass over all symbols (advances chunked partial fills)."""
        self._gateway.publish(self._gateway.engine.step())

    def drop_connections(self) -> None:
        """Close every client connection; new connections are still accepted."""
        self._gateway.drop_connections()

    def refuse_connections(self, seconds: float) -> None:
        """Drop every connection and stop listening for ``seconds`` (gateway restart)."""
        self._gateway.refuse_connections(float(seconds))

    def reject_next_orders(self, count: int) -> None:
        """Reject the next ``count`` new orders with error 201."""
        self._gateway.engine.reject_next = int(count)

    def delay_acks(self, ms: float) -> None:
        """Hold every placeOrder/cancelOrder/reqGlobalCancel ``ms`` before handling it."""
        self._gateway.faults.ack_delay_ms = float(ms)

    def connectivity_lost(self) -> None:
        """Send error 1100 to every client (informational: orders keep working)."""
        self._gateway.broadcast_error(*CONNECTIVITY_LOST)

    def connectivity_restored(self) -> None:
        """Send error 1102 to every client."""
        self._gateway.broadcast_error(*CONNECTIVITY_RESTORED)

    def snapshot(self) -> AccountSnapshot:
        return self._gateway.snapshot()

    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        """Run one JSON command and report ``{"ok": true, ...}`` or an ``error``.

        Unknown ops and bad arguments are reported in the result, never raised.
        """
        args = dict(command)
        op = args.pop("op", None)
        if op not in self.COMMANDS:
            return {"ok": False, "error": f"unknown op {op!r}"}
        try:
            result = getattr(self, op)(**args)
        except (TypeError, ValueError, KeyError) as exc:
            return {"ok": False, "error": str(exc)}
        if isinstance(result, AccountSnapshot):
            return {"ok": True, "snapshot": _snapshot_json(result)}
        return {"ok": True}


def _snapshot_json(snap: AccountSnapshot) -> dict[str, Any]:
    return {
        "account": snap.account,
        "cash": snap.cash,
        "net_liquidation": snap.net_liquidation,
        "positions": {
            s: {"quantity": p.quantity, "avg_cost": p.avg_cost} for s, p in snap.positions.items()
        },
        "open_orders": [
            {
                "client_id": o.client_id,
                "order_id": o.order_id,
                "perm_id": o.perm_id,
                "symbol": o.symbol,
                "action": o.action,
                "quantity": o.quantity,
                "order_type": o.order_type,
                "status": o.status,
                "order_ref": o.order_ref,
            }
            for o in snap.open_orders
        ],
        "executions": len(snap.executions),
    }


async def serve_control_lines(
    control: SimControl, reader: asyncio.StreamReader, reply: Callable[[str], None]
) -> None:
    """Apply one JSON command per line from ``reader``; ``reply`` gets one JSON line each."""
    while line := await reader.readline():
        text = line.decode(errors="replace").strip()
        if not text:
            continue
        try:
            command = json.loads(text)
        except json.JSONDecodeError as exc:
            reply(json.dumps({"ok": False, "error": f"invalid JSON: {exc}"}))
            continue
        if not isinstance(command, dict):
            reply(json.dumps({"ok": False, "error": "a command is a JSON object"}))
            continue
        reply(json.dumps(control.apply(command)))
