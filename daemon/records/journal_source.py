"""``FillSource`` and ``OrderSource`` over the journal's tables: executions and final orders with
their commissions, contract, and the intent (reason, rule, leg, config generation) that placed
their order."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from tradectl.planner.legs import parse_order_ref
from tradectl.records.model import FillRecord, OrderRecord

# The contract is the one IB reported with the execution or order (for journals from before
# conIds were kept: the one its symbol resolved to). The intent behind an execution: the place
# intent of the same order (client id + order id), else the latest place intent with its
# orderRef journaled before the fill (orders found at the broker after a crash may have been
# matched by orderRef only).
_SELECT = """
SELECT s.seq, e.exec_id, e.order_id, e.perm_id, e.order_ref, e.symbol, e.side, e.shares,
       e.price, e.time, c.commission, c.currency, COALESCE(e.con_id, k.con_id) AS con_id,
       i.rule AS intent_rule, i.leg AS intent_leg, i.reason, p.generation
FROM record_fill_seq s
JOIN executions e ON e.exec_id = s.exec_id
LEFT JOIN commissions c ON c.exec_id = e.exec_id
LEFT JOIN contracts k ON k.symbol = e.symbol
LEFT JOIN intents i ON i.id = COALESCE(
    (SELECT id FROM intents WHERE action = 'place' AND client_id = e.client_id
        AND order_id = e.order_id ORDER BY id DESC LIMIT 1),
    (SELECT id FROM intents WHERE action = 'place' AND order_ref = e.order_ref
        AND created_at <= e.time ORDER BY id DESC LIMIT 1))
LEFT JOIN reconcile_passes p ON p.id = i.pass_id
"""

_SIDES = {"BOT": "BUY", "SLD": "SELL", "BUY": "BUY", "SELL": "SELL"}


class JournalFillSource:
    """Reads fills from the journal database.

    The journal does not store the account per execution; a daemon trades one account, so
    ``account`` (the rule set's ``account.id``) is filled in, or left empty when unknown.
    """

    def __init__(self, conn: sqlite3.Connection, account: str | None = None) -> None:
        self._conn = conn
        self._account = account

    def fills_after(self, seq: int, limit: int) -> Sequence[FillRecord]:
        rows = self._conn.execute(
            _SELECT + " WHERE s.seq > ? ORDER BY s.seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [self._record(row) for row in rows]

    def fills_in_range(self, first: int, last: int) -> Sequence[FillRecord]:
        rows = self._conn.execute(
            _SELECT + " WHERE s.seq BETWEEN ? AND ? ORDER BY s.seq", (first, last)
        ).fetchall()
        return [self._record(row) for row in rows]

    def fills_between(self, start: datetime, end: datetime) -> Sequence[FillRecord]:
        # The journal stores times as fixed-width UTC ISO text, so text order is time order.
        rows = self._conn.execute(
            _SELECT + " WHERE e.time >= ? AND e.time < ? ORDER BY s.seq",
            (_utc_text(start), _utc_text(end)),
        ).fetchall()
        return [self._record(row) for row in rows]

    def _record(self, row: sqlite3.Row) -> FillRecord:
        parsed = parse_order_ref(row["order_ref"])
        rule = row["intent_rule"] or (parsed.rule if parsed else None)
        leg = row["intent_leg"] or (parsed.leg if parsed else None)
        return FillRecord(
            seq=row["seq"],
            time=datetime.fromisoformat(row["time"]),
            account=self._account,
            symbol=row["symbol"],
            con_id=row["con_id"],
            side=_SIDES.get(str(row["side"]).upper(), str(row["side"])),
            quantity=float(row["shares"]),
            price=float(row["price"]),
            order_id=row["order_id"],
            perm_id=row["perm_id"],
            exec_id=row["exec_id"],
            commission=None if row["commission"] is None else float(row["commission"]),
            commission_currency=row["currency"],
            order_ref=row["order_ref"],
            rule=rule,
            leg=leg,
            rule_generation=parsed.generation if parsed else None,
            intent_reason=row["reason"],
            config_generation=row["generation"],
        )


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# The row of an order: the journal may hold one row per (order, permId) when the permId became
# known after the first status; the latest row with a permId wins.
_SELECT_ORDERS = """
SELECT s.seq, s.final_at, o.client_id, o.order_id, o.perm_id, o.order_ref, o.symbol, o.action,
       o.order_type, o.quantity, o.limit_price, o.aux_price, o.status, o.filled, o.first_seen,
       COALESCE(o.con_id, k.con_id) AS con_id, x.executions, x.average_price, x.commission,
       i.rule AS intent_rule, i.leg AS intent_leg, i.reason, p.generation
FROM record_order_seq s
JOIN orders o ON o.rowid = (
    SELECT rowid FROM orders WHERE client_id = s.client_id AND order_id = s.order_id
    ORDER BY perm_id != 0 DESC, updated_at DESC LIMIT 1)
LEFT JOIN contracts k ON k.symbol = o.symbol
LEFT JOIN (
    SELECT e.client_id, e.order_id, COUNT(*) AS executions,
           SUM(e.shares * e.price) / NULLIF(SUM(e.shares), 0) AS average_price,
           SUM(c.commission) AS commission
    FROM executions e LEFT JOIN commissions c ON c.exec_id = e.exec_id
    GROUP BY e.client_id, e.order_id
) x ON x.client_id = o.client_id AND x.order_id = o.order_id
LEFT JOIN intents i ON i.id = COALESCE(
    (SELECT id FROM intents WHERE action = 'place' AND client_id = o.client_id
        AND order_id = o.order_id ORDER BY id DESC LIMIT 1),
    (SELECT id FROM intents WHERE action = 'place' AND order_ref = o.order_ref
        AND created_at <= o.first_seen ORDER BY id DESC LIMIT 1))
LEFT JOIN reconcile_passes p ON p.id = i.pass_id
"""


class JournalOrderSource:
    """Reads final orders from the journal database (``account`` as in ``JournalFillSource``)."""

    def __init__(self, conn: sqlite3.Connection, account: str | None = None) -> None:
        self._conn = conn
        self._account = account

    def orders_after(self, seq: int, limit: int) -> Sequence[OrderRecord]:
        rows = self._conn.execute(
            _SELECT_ORDERS + " WHERE s.seq > ? ORDER BY s.seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [self._record(row) for row in rows]

    def orders_in_range(self, first: int, last: int) -> Sequence[OrderRecord]:
        rows = self._conn.execute(
            _SELECT_ORDERS + " WHERE s.seq BETWEEN ? AND ? ORDER BY s.seq", (first, last)
        ).fetchall()
        return [self._record(row) for row in rows]

    def orders_between(self, start: datetime, end: datetime) -> Sequence[OrderRecord]:
        rows = self._conn.execute(
            _SELECT_ORDERS + " WHERE s.final_at >= ? AND s.final_at < ? ORDER BY s.seq",
            (_utc_text(start), _utc_text(end)),
        ).fetchall()
        return [self._record(row) for row in rows]

    def _record(self, row: sqlite3.Row) -> OrderRecord:
        parsed = parse_order_ref(row["order_ref"])
        return OrderRecord(
            seq=row["seq"],
            time=datetime.fromisoformat(row["final_at"]),
            account=self._account,
            symbol=row["symbol"],
            con_id=row["con_id"],
            side=_SIDES.get(str(row["action"]).upper(), str(row["action"])),
            order_type=row["order_type"],
            quantity=float(row["quantity"]),
            status=row["status"],
            filled=float(row["filled"]),
            order_id=row["order_id"],
            perm_id=row["perm_id"],
            client_id=row["client_id"],
            average_price=row["average_price"],
            limit_price=row["limit_price"],
            aux_price=row["aux_price"],
            executions=int(row["executions"] or 0),
            commission=row["commission"],
            submitted=datetime.fromisoformat(row["first_seen"]),
            order_ref=row["order_ref"],
            rule=row["intent_rule"] or (parsed.rule if parsed else None),
            leg=row["intent_leg"] or (parsed.leg if parsed else None),
            rule_generation=parsed.generation if parsed else None,
            intent_reason=row["reason"],
            config_generation=row["generation"],
        )
