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

from tradectl.sim.clock import iso_time, parse_iso
from tradectl.sim.faults import DROPPABLE, malformed_frames
from tradectl.sim.model import AccountChanged, AccountSnapshot, Event
from tradectl.sim.state import MarketHoursMode

if TYPE_CHECKING:
    from tradectl.sim.server import SimGateway

CONNECTIVITY_LOST = (1100, "Connectivity between IB and Trader Workstation has been lost.")
CONNECTIVITY_RESTORED = (
    1102,
    "Connectivity between IB and Trader Workstation has been restored - data maintained.",
)
CONNECTIVITY_RESTORED_DATA_LOST = (
    1101,
    "Connectivity between IB and Trader Workstation has been restored - data lost.",
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
            "drop_next",
            "pace_out_next",
            "connectivity_lost",
            "connectivity_restored",
            "connectivity_restored_data_lost",
            "forget_day",
            "send_malformed",
            "snapshot",
            "transfer",
            "now",
            "advance",
            "halt",
            "resume",
        }
    )

    def __init__(self, gateway: SimGateway) -> None:
        self._gateway = gateway

    def _publish(self, events: list[Event]) -> None:
        """Send what an op caused; account summaries show its effect at once, not at their
        next three minute refresh."""
        self._gateway.publish(events)
        self._gateway.refresh_account_summaries()

    def set_price(self, symbol: str, price: float) -> None:
        """Move the last price (bid/ask follow), push ticks and re-run matching."""
        self._publish(self._gateway.engine.set_price(symbol, float(price)))

    def set_hours(self, hours: str) -> None:
        """Change the hours that contract details report from now on (``market.hours``)."""
        if hours not in get_args(MarketHoursMode):
            raise ValueError(f"hours must be one of {', '.join(get_args(MarketHoursMode))}")
        self._gateway.engine.state.market.hours = cast(MarketHoursMode, hours)

    def step(self) -> None:
        """Run one matching pass over all symbols (advances chunked partial fills)."""
        self._publish(self._gateway.engine.step())

    def drop_connections(self) -> None:
        """Close every client connection; new connections are still accepted."""
        self._gateway.drop_connections()

    def connectivity_restored_data_lost(self) -> None:
        """End every client's market-data subscriptions and send error 1101, as IB does when
        its connection comes back without them: the client must subscribe again."""
        for session in self._gateway.sessions():
            session.subs.market_data.clear()
        self._gateway.broadcast_error(*CONNECTIVITY_RESTORED_DATA_LOST)

    def refuse_connections(self, seconds: float) -> None:
        """Drop every connection and stop listening for ``seconds`` (gateway restart)."""
        self._gateway.refuse_connections(float(seconds))

    def reject_next_orders(self, count: int) -> None:
        """Reject the next ``count`` new orders with error 201."""
        self._gateway.engine.reject_next = int(count)

    def delay_acks(self, ms: float) -> None:
        """Hold every placeOrder/cancelOrder/reqGlobalCancel ``ms`` before handling it."""
        self._gateway.faults.ack_delay_ms = float(ms)

    def drop_next(self, message: str, count: int = 1) -> None:
        """Lose the next ``count`` ``message`` messages (one of ``DROPPABLE``: "orderStatus",
        "execDetails") on their way to whichever client they go to: a client's streamed state
        misses them, while the gateway's own state and later answers stay complete."""
        if message not in DROPPABLE:
            raise ValueError(f"message must be one of {', '.join(sorted(DROPPABLE))}")
        faults = self._gateway.faults
        message_id = DROPPABLE[message]
        faults.drop_next[message_id] = faults.drop_next.get(message_id, 0) + int(count)

    def pace_out_next(self, message: str, count: int = 1) -> None:
        """Drop the next ``count`` ``message`` messages a client sends (a request name such as
        "placeOrder") unprocessed with error 100, as IB does to a message over its pacing
        limit, however slowly they come."""
        if not message:
            raise ValueError("message must name a client request, such as placeOrder")
        faults = self._gateway.faults
        faults.pace_out_next[message] = faults.pace_out_next.get(message, 0) + int(count)

    def connectivity_lost(self) -> None:
        """Send error 1100 to every client (informational: orders keep working)."""
        self._gateway.broadcast_error(*CONNECTIVITY_LOST)

    def connectivity_restored(self) -> None:
        """Send error 1102 to every client."""
        self._gateway.broadcast_error(*CONNECTIVITY_RESTORED)

    def transfer(self, amount: float, account: str = "") -> None:
        """Deposit (positive ``amount``) or withdraw (negative) base-currency cash of
        ``account`` (default the first): net liquidation moves, today's P&L does not."""
        engine = self._gateway.engine
        engine.accounts[account or engine.account.id].transfer(float(amount))
        self._publish([AccountChanged(frozenset())])

    def forget_day(self) -> None:
        """Stand-in for the next trading day (docs/sim.md): drop the day's executions and
        completed orders, as IB Gateway's reqExecutions and reqCompletedOrders cover the current
        day only. Positions, cash and working orders stay."""
        self._gateway.engine.forget_day()

    def send_malformed(self, kind: str) -> None:
        """Write malformed, truncated, out-of-order or oversized messages to every client:
        one of ``tradectl.sim.faults.MALFORMED`` (docs/sim.md)."""
        frames = malformed_frames(kind)
        for session in self._gateway.sessions():
            for data in frames:
                session.send_raw(data)

    def snapshot(self, account: str = "") -> AccountSnapshot:
        """One account of the login (default the first), its orders and executions."""
        return self._gateway.snapshot(account)

    def now(self) -> dict[str, str]:
        """The gateway's time, ISO-8601 in UTC."""
        return {"now": iso_time(self._gateway.clock.now())}

    def advance(self, to: str | None = None, seconds: float | None = None) -> dict[str, str]:
        """Jump the clock to ``to`` (ISO-8601 with offset) or by ``seconds``; returns the new time.

        Everything due on the way happens in order (see SimGateway.advance).
        """
        if (to is None) == (seconds is None):
            raise ValueError("advance takes either 'to' or 'seconds'")
        target = (
            parse_iso(to) if to is not None else self._gateway.clock.now() + float(seconds or 0)
        )
        self._gateway.advance(target)
        return self.now()

    def halt(self, symbol: str, reason: int = 1) -> None:
        """Halt trading in ``symbol``: tick 49 = ``reason`` (1 regulatory, 2 volatility)."""
        self._publish(self._gateway.engine.halt(symbol, int(reason)))

    def resume(self, symbol: str) -> None:
        """End a halt: tick 49 = 0, and matching runs again."""
        self._publish(self._gateway.engine.resume(symbol))

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
        if isinstance(result, dict):
            return {"ok": True, **result}
        return {"ok": True}


def _snapshot_json(snap: AccountSnapshot) -> dict[str, Any]:
    return {
        "account": snap.account,
        "accounts": snap.accounts,
        "currency": snap.currency,
        "cash": snap.cash,
        "cash_balances": snap.cash_balances,
        "net_liquidation": snap.net_liquidation,
        "previous_day_equity": snap.previous_day_equity,
        "daily_pnl": snap.daily_pnl,
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
                "lmt_price": o.lmt_price,
                "aux_price": o.aux_price,
                "tif": o.tif,
                "parent_id": o.parent_id,
                "oca_group": o.oca_group,
                "filled": o.filled,
                "held": o.held,
            }
            for o in snap.open_orders
        ],
        "executions": len(snap.executions),
        "prices": dict(snap.prices),
        "fills": [
            {
                "exec_id": e.exec_id,
                "client_id": e.client_id,
                "order_id": e.order_id,
                "order_ref": e.order_ref,
                "symbol": e.symbol,
                "side": e.side,
                "shares": e.shares,
                "price": e.price,
                "time": e.time,
            }
            for e in snap.executions
        ],
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
