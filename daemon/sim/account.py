"""The simulated account: cash, positions, valuation, buying power and commissions."""

from __future__ import annotations

from tradectl.sim.model import Execution, Instrument, Position, SimOrder
from tradectl.sim.state import SimState


class Account:
    def __init__(self, state: SimState, instruments: dict[str, Instrument]) -> None:
        self.id = state.account.id
        self.currency = state.account.currency
        self.cash = state.account.cash
        self.positions: dict[str, Position] = {
            p.symbol: Position(p.quantity, p.avg_cost, p.realized_pnl) for p in state.positions
        }
        self._instruments = instruments
        self._matching = state.matching
        self.previous_day_equity = (
            self.net_liquidation()
            if state.account.previous_day_equity is None
            else state.account.previous_day_equity
        )
        # Deposits minus withdrawals since the session opened: IB's daily P&L leaves them out.
        self.transfers_today = 0.0

    def market_value(self, symbol: str) -> float:
        pos = self.positions.get(symbol)
        return pos.quantity * self._instruments[symbol].last if pos else 0.0

    def unrealized_pnl(self, symbol: str) -> float:
        pos = self.positions.get(symbol)
        if not pos or not pos.quantity:
            return 0.0
        return (self._instruments[symbol].last - pos.avg_cost) * pos.quantity

    def net_liquidation(self) -> float:
        return self.cash + sum(self.market_value(s) for s in self.positions)

    def gross_position_value(self) -> float:
        return sum(abs(self.market_value(s)) for s in self.positions)

    @property
    def initial_margin_rate(self) -> float:
        """Leverage 1 is a cash account (100%); leverage 2 is Reg T's 50% initial margin."""
        return 1.0 / max(1.0, self._matching.leverage)

    @property
    def maintenance_margin_rate(self) -> float:
        """A cash account holds 100%; a margin account Reg T's 25% (never above the initial)."""
        return 1.0 if self._matching.leverage <= 1 else min(0.25, self.initial_margin_rate)

    def buying_power(self) -> float:
        leverage = self._matching.leverage
        return max(0.0, self.net_liquidation() * leverage - self.gross_position_value())

    def daily_pnl(self) -> float:
        """Today's P&L as IB's reqPnL reports it: the change of value since the previous close,
        without deposits and withdrawals."""
        return self.net_liquidation() - self.previous_day_equity - self.transfers_today

    def position_daily_pnl(self, symbol: str, fills_today: list[Execution]) -> float:
        """One position's daily P&L (reqPnLSingle): its value now, less its value at the
        previous close, less what today's trades in it paid (commissions included)."""
        inst = self._instruments[symbol]
        pos = self.positions.get(symbol, Position())
        spent = 0.0
        bought = 0.0
        for ex in fills_today:
            if ex.symbol == symbol:
                signed = ex.shares if ex.side == "BOT" else -ex.shares
                bought += signed
                spent += signed * ex.price + ex.commission
        held_at_close = pos.quantity - bought
        return pos.quantity * inst.last - held_at_close * inst.close - spent

    def transfer(self, amount: float) -> None:
        """A deposit (positive) or withdrawal (negative) of cash."""
        self.cash += amount
        self.transfers_today += amount

    def roll_day(self) -> None:
        """Midnight New York: today's value becomes the previous close's equity and the day's
        transfers start again, so the daily P&L (and tradectl's breaker baseline) moves on."""
        self.previous_day_equity = self.net_liquidation()
        self.transfers_today = 0.0

    def values(self) -> dict[str, float]:
        nav = self.net_liquidation()
        gpv = self.gross_position_value()
        bp = self.buying_power()
        return {
            "NetLiquidation": nav,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "CashBalance": self.cash,
            "EquityWithLoanValue": nav,
            "PreviousDayEquityWithLoanValue": self.previous_day_equity,
            "GrossPositionValue": gpv,
            "BuyingPower": bp,
            "AvailableFunds": bp / self._matching.leverage,
            "ExcessLiquidity": nav - gpv * self.maintenance_margin_rate,
            "InitMarginReq": gpv * self.initial_margin_rate,
            "MaintMarginReq": gpv * self.maintenance_margin_rate,
            "UnrealizedPnL": sum(self.unrealized_pnl(s) for s in self.positions),
            "RealizedPnL": sum(p.realized_pnl for p in self.positions.values()),
        }

    def commission(self, order: SimOrder, qty: float, price: float) -> float:
        """IB fixed pricing, applied per order: each fill pays the increase of the order's total."""
        m = self._matching

        def total(shares: float, value: float) -> float:
            if not shares:
                return 0.0
            fee = max(m.commission_min, shares * m.commission_per_share)
            return min(fee, value * m.commission_max_fraction)

        before = total(order.filled, order.filled_value)
        after = total(order.filled + qty, order.filled_value + qty * price)
        return round(after - before, 6)

    def book_fill(
        self, order: SimOrder, qty: float, price: float, commission: float
    ) -> float | None:
        """Book a fill; return the realized P&L if it closed shares (IB reports none otherwise)."""
        pos = self.positions.setdefault(order.symbol, Position())
        signed = order.sign * qty
        self.cash -= signed * price + commission
        realized: float | None = None
        if pos.quantity and (pos.quantity > 0) != (signed > 0):
            closing = min(qty, abs(pos.quantity))
            realized = (price - pos.avg_cost) * closing * (1 if pos.quantity > 0 else -1)
            realized -= commission * closing / qty
            pos.realized_pnl += realized
            pos.quantity += order.sign * closing
            opening = qty - closing
            if opening:
                # Flipped through zero: the rest opens a new position at this price.
                pos.quantity = order.sign * opening
                pos.avg_cost = price + commission / qty
            elif not pos.quantity:
                pos.avg_cost = 0.0
        else:
            # IB folds commissions into the average cost of an opening trade.
            cost = abs(pos.quantity) * pos.avg_cost + qty * price + commission
            pos.quantity += signed
            pos.avg_cost = cost / abs(pos.quantity)
        return realized
