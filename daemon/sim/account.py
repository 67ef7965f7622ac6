"""The simulated accounts: cash per currency, positions, valuation, buying power and
commissions.

Each listing trades in its own currency: a fill moves that currency's cash and values the
position in it. Net liquidation, margin and buying power are in the account's base
currency, converted at the sim's exchange rates: the last prices of the IDEALPRO pairs
against USD (docs/sim.md, "Currencies").
"""

from __future__ import annotations

from tradectl.sim.model import Execution, Instrument, Position, SimOrder
from tradectl.sim.state import AccountSpec, MatchingSpec

# IB's IDEALPRO commission: 0.2 basis points of the trade value, at least 2 USD.
FX_COMMISSION_RATE = 0.00002
FX_COMMISSION_MIN_USD = 2.0


class ExchangeRates:
    """What one unit of a currency is worth in another, from the pairs' last prices."""

    def __init__(self, instruments: dict[str, Instrument]) -> None:
        # currency -> (the pair quoting it against USD, whether USD is its base)
        self._pairs: dict[str, tuple[Instrument, bool]] = {}
        for inst in instruments.values():
            if inst.sec_type != "CASH" or "USD" not in (inst.ib_symbol, inst.currency):
                continue
            if inst.currency == "USD":
                self._pairs.setdefault(inst.ib_symbol, (inst, False))
            else:
                self._pairs.setdefault(inst.currency, (inst, True))

    def in_usd(self, currency: str) -> float:
        if currency == "USD":
            return 1.0
        inst, usd_is_base = self._pairs[currency]
        return 1.0 / inst.last if usd_is_base else inst.last

    def rate(self, currency: str, into: str) -> float:
        """One ``currency`` in ``into``: IB's ExchangeRate when ``into`` is the base."""
        return 1.0 if currency == into else self.in_usd(currency) / self.in_usd(into)

    def moves(self, inst: Instrument) -> bool:
        """Whether this listing's price is one of the rates."""
        pair = self._pairs.get(inst.currency if inst.ib_symbol == "USD" else inst.ib_symbol)
        return pair is not None and pair[0] is inst


class Account:
    def __init__(
        self,
        spec: AccountSpec,
        matching: MatchingSpec,
        instruments: dict[str, Instrument],
        rates: ExchangeRates,
        positions: dict[str, Position],
    ) -> None:
        self.id = spec.id
        self.currency = spec.currency
        self.balances: dict[str, float] = {spec.currency: spec.cash, **spec.cash_balances}
        self.positions = positions
        self.currency_shortfall = spec.currency_shortfall
        self._instruments = instruments
        self._matching = matching
        self.rates = rates
        self.previous_day_equity = (
            self.net_liquidation() if spec.previous_day_equity is None else spec.previous_day_equity
        )
        # Deposits minus withdrawals since the session opened: IB's daily P&L leaves them out.
        self.transfers_today = 0.0

    @property
    def cash(self) -> float:
        """All cash, in the base currency (IB's TotalCashValue)."""
        return sum(self.in_base(amount, ccy) for ccy, amount in self.balances.items())

    @property
    def borrows(self) -> bool:
        """Whether a buy may take a currency's cash below zero (a margin account)."""
        if self.currency_shortfall == "auto":
            return self._matching.leverage > 1
        return self.currency_shortfall == "borrow"

    def in_base(self, amount: float, currency: str) -> float:
        return amount * self.rates.rate(currency, self.currency)

    def currencies(self) -> list[str]:
        """The currencies the account holds cash or positions in, base first."""
        held = set(self.balances) | {
            self._instruments[s].currency for s, p in self.positions.items() if p.quantity
        }
        return [self.currency, *sorted(held - {self.currency})]

    def market_value(self, symbol: str) -> float:
        """In the listing's currency."""
        pos = self.positions.get(symbol)
        return self._instruments[symbol].value(pos.quantity) if pos else 0.0

    def unrealized_pnl(self, symbol: str) -> float:
        """In the listing's currency."""
        pos = self.positions.get(symbol)
        if not pos or not pos.quantity:
            return 0.0
        inst = self._instruments[symbol]
        return inst.value(pos.quantity, inst.last - pos.avg_cost)

    def _in_base(self, per_symbol: dict[str, float]) -> float:
        return sum(self.in_base(v, self._instruments[s].currency) for s, v in per_symbol.items())

    def net_liquidation(self) -> float:
        return self.cash + self._in_base({s: self.market_value(s) for s in self.positions})

    def gross_position_value(self) -> float:
        return self._in_base({s: abs(self.market_value(s)) for s in self.positions})

    def total_unrealized_pnl(self) -> float:
        return self._in_base({s: self.unrealized_pnl(s) for s in self.positions})

    def total_realized_pnl(self) -> float:
        return self._in_base({s: p.realized_pnl for s, p in self.positions.items()})

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
            if ex.symbol == symbol and ex.account == self.id:
                signed = ex.shares if ex.side == "BOT" else -ex.shares
                bought += signed
                spent += inst.value(signed, ex.price) + ex.commission
        held_at_close = pos.quantity - bought
        return inst.value(pos.quantity) - inst.value(held_at_close, inst.close) - spent

    def transfer(self, amount: float) -> None:
        """A deposit (positive) or withdrawal (negative) of base-currency cash."""
        self.balances[self.currency] = self.balances.get(self.currency, 0.0) + amount
        self.transfers_today += amount

    def values(self) -> dict[str, float]:
        """The account values in the base currency."""
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
            "UnrealizedPnL": self.total_unrealized_pnl(),
            "RealizedPnL": self.total_realized_pnl(),
        }

    def ledger(self, currency: str) -> dict[str, float]:
        """One currency's ledger: its cash, and the positions listed in it, in it."""
        held = [s for s in self.positions if self._instruments[s].currency == currency]
        cash = self.balances.get(currency, 0.0)
        stocks = sum(self.market_value(s) for s in held)
        return {
            "CashBalance": cash,
            "TotalCashBalance": cash,
            "StockMarketValue": stocks,
            "NetLiquidationByCurrency": cash + stocks,
            "UnrealizedPnL": sum(self.unrealized_pnl(s) for s in held),
            "RealizedPnL": sum(self.positions[s].realized_pnl for s in held),
            "ExchangeRate": self.rates.rate(currency, self.currency),
        }

    def base_ledger(self) -> dict[str, float]:
        """The ``BASE`` rows: every currency's ledger converted into the base currency."""
        total = dict.fromkeys(self.ledger(self.currency), 0.0)
        for currency in self.currencies():
            for tag, value in self.ledger(currency).items():
                total[tag] += self.in_base(value, currency)
        total["ExchangeRate"] = 1.0
        return total

    def commission(self, order: SimOrder, qty: float, price: float) -> float:
        """In the listing's currency. Stocks: IB fixed pricing, applied per order, each fill
        paying the increase of the order's total. Currency pairs: IDEALPRO's 0.2 basis
        points of the value, at least 2 USD."""
        m = self._matching
        inst = self._instruments[order.symbol]
        if inst.sec_type == "CASH":
            value = qty * price
            minimum = FX_COMMISSION_MIN_USD * self.rates.rate("USD", inst.currency)
            return round(max(minimum, value * FX_COMMISSION_RATE), 6)

        def total(shares: float, value: float) -> float:
            if not shares:
                return 0.0
            fee = max(m.commission_min, shares * m.commission_per_share)
            return min(fee, inst.value(1, value) * m.commission_max_fraction)

        before = total(order.filled, order.filled_value)
        after = total(order.filled + qty, order.filled_value + qty * price)
        return round(after - before, 6)

    def book_fill(
        self, order: SimOrder, qty: float, price: float, commission: float
    ) -> float | None:
        """Book a fill; return the realized P&L if it closed shares (IB reports none otherwise)."""
        inst = self._instruments[order.symbol]
        signed = order.sign * qty
        if inst.sec_type == "CASH":
            # A conversion: one currency's cash for another's, no position (docs/sim.md).
            self._move_cash(inst.ib_symbol, signed)
            self._move_cash(inst.currency, -signed * price - commission)
            return None
        pos = self.positions.setdefault(order.symbol, Position())
        self._move_cash(inst.currency, -inst.value(signed, price) - commission)
        # Average costs are in the listing's quote (pence on LSE), commission included.
        commission_quoted = commission * inst.price_magnifier
        realized: float | None = None
        if pos.quantity and (pos.quantity > 0) != (signed > 0):
            closing = min(qty, abs(pos.quantity))
            sign = 1 if pos.quantity > 0 else -1
            realized = inst.value(closing * sign, price - pos.avg_cost)
            realized -= commission * closing / qty
            pos.realized_pnl += realized
            pos.quantity += order.sign * closing
            opening = qty - closing
            if opening:
                # Flipped through zero: the rest opens a new position at this price.
                pos.quantity = order.sign * opening
                pos.avg_cost = price + commission_quoted / qty
            elif not pos.quantity:
                pos.avg_cost = 0.0
        else:
            # IB folds commissions into the average cost of an opening trade.
            cost = abs(pos.quantity) * pos.avg_cost + qty * price + commission_quoted
            pos.quantity += signed
            pos.avg_cost = cost / abs(pos.quantity)
        return realized

    def _move_cash(self, currency: str, amount: float) -> None:
        self.balances[currency] = self.balances.get(currency, 0.0) + amount
