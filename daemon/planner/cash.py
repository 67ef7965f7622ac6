"""Cash for opening buys (docs/planning.md, "Cash"): what a pass may commit, and in which order.

One arithmetic, used twice on purpose: the planner runs it on the bracket and scale intents it
drafted, to size allocation buys with what those leave; the gate runs it again on the whole
plan, with every other verdict known, and blocks what does not fit.

* The commitment starts with every live working buy at its current size: a cancel frees nothing
  until IB confirms it, and manual orders spend the same cash.
* Bracket entries and scale levels that buy (opening, ``BUY``) are admitted next, in a fixed
  order: brackets before scales, then by rule name, then by leg (L1 before L2). Each is admitted
  while the commitment stays within the account's funding; one that does not fit is blocked,
  and later, smaller ones may still fit.
* Allocation buys come last and are checked by the gate against cash minus their rule's buffer.
* Protective and closing orders never need cash and are never blocked here; sells (short
  entries included) do not count.

Every amount is in the account's base currency (prices converted with IB's exchange rates);
cash per currency is checked after this, in daemon/planner/money.py.

The funding is cash (``TotalCashValue``) for a cash account and IB's ``BuyingPower`` for a
margin account (``Observed.margin_account``). Allocation buys stay within cash in both
(docs/planning.md, "Cash": buys never spend cash below zero).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import filterfalse
from typing import Literal

from tradectl.planner.common import TERMINAL_STATUSES, buy_price, money, unvalued_buy
from tradectl.planner.domain import Intent, Observed, WorkingOrder
from tradectl.planner.legs import ENTRY_LEG
from tradectl.planner.money import Rates, base_rate, is_conversion

# Sums of floats: a commitment this close to the funding still fits.
_SLACK = 1e-6
_KIND_ORDER = {"brackets": 0, "scales": 1}


@dataclass(frozen=True)
class Funding:
    """What opening bracket and scale buys may commit, and where the figure comes from."""

    source: Literal["cash", "buying power"]
    amount: float

    def describe(self) -> str:
        if self.source == "cash":
            return f"cash {money(self.amount)} (cash account: TotalCashValue)"
        return f"buying power {money(self.amount)} (margin account: BuyingPower)"


def funding_of(observed: Observed) -> Funding:
    if observed.margin_account:
        return Funding("buying power", observed.buying_power)
    return Funding("cash", observed.cash)


def needs_cash(intent: Intent) -> bool:
    """A bracket entry or scale level that buys to open."""
    if intent.order is None or intent.order.action != "BUY" or intent.purpose != "opening":
        return False
    return intent.kind == "scales" or (intent.kind == "brackets" and intent.leg == ENTRY_LEG)


def buy_value(order: WorkingOrder, observed: Observed) -> float | None:
    """Cash a working buy order may still take, in the base currency: its remaining quantity at
    its limit (else its stop, else the last price); None when it has no usable price
    (``buy_price``)."""
    if order.action != "BUY":
        return 0.0
    price = buy_price(order, _last(order, observed))
    if price is None:
        return None
    return order.remaining * price * base_rate(observed, order.symbol)


def _last(order: WorkingOrder, observed: Observed) -> float | None:
    quote = observed.quotes.get(order.symbol)
    return None if quote is None else quote.last


def working_buys_value(
    orders: Iterable[WorkingOrder],
    observed: Observed,
    spent: float = 0.0,
    leaving_out: Container[int] = (),
) -> tuple[float, list[str]]:
    """``spent`` plus what the working buys among ``orders`` may still take, each valued as
    ``buy_value`` values it, but those whose order id is in ``leaving_out``; and why each one
    without a usable price has none (``unvalued_buy``), in order. The rates come from the
    pass's table (``Rates``: one contract look-up per order instead of three), and a quote is
    looked up only for a market buy, the only one valued at the last price (``buy_price``).
    The gate's cash check and the allocations' share of the cash both value working buys here."""
    rates = Rates(observed)
    quotes = observed.quotes
    unvalued: list[str] = []
    for order in orders:
        if order.action != "BUY" or order.order_id in leaving_out:
            # buy_value is 0 for a sell: adding 0.0 to the sum changes nothing.
            continue
        last = None
        if order.limit_price is None and order.aux_price is None:
            quote = quotes.get(order.symbol)
            last = None if quote is None else quote.last
        price = buy_price(order, last)
        if price is None:
            unvalued.append(unvalued_buy(order, last))
            continue
        rate = rates.of(order.symbol)
        spent += order.remaining * price * (1.0 if rate is None else rate)
    return spent, unvalued


def live_orders(observed: Observed) -> dict[int, WorkingOrder]:
    return {
        order.order_id: order
        for order in observed.working_orders
        if order.status not in TERMINAL_STATUSES
    }


def commitment_change(
    intent: Intent, live: Mapping[int, WorkingOrder], observed: Observed
) -> float:
    """How much the buy commitment changes if this place or modify goes through."""
    assert intent.order is not None
    before = None
    if intent.action == "modify" and intent.order_id is not None:
        before = live.get(intent.order_id)
    filled = 0.0 if before is None else before.filled
    new = 0.0
    if intent.order.action == "BUY":
        new = (intent.order.quantity - filled) * (intent.estimated_price or 0.0) * intent.fx_rate
    # An old order without a usable price frees nothing (the cash check then blocks every buy).
    old = (0.0 if before is None else buy_value(before, observed)) or 0.0
    return new - old


@dataclass
class CashCheck:
    """The outcome of admitting a plan's buys: ``committed`` after every admitted bracket and
    scale buy and every allocation change that frees cash; ``blocked`` the bracket and scale
    buys that do not fit, and every buy that adds to the commitment while a working buy has no
    usable price (intent index to reason); ``standing_added`` what the admitted bracket
    and scale buys add; ``allocation_additions`` the allocation buys still to be checked, in
    plan order, with what each adds."""

    funding: Funding
    committed: float
    standing_added: float = 0.0
    blocked: dict[int, str] = field(default_factory=dict)
    allocation_additions: list[tuple[int, float]] = field(default_factory=list)


def check_cash(
    intents: Sequence[Intent], blocked_by: Mapping[int, str], observed: Observed
) -> CashCheck:
    """Admit the buys of ``intents`` that are not already blocked (see the module docstring).

    Only the intents not blocked are read (the gate's rate limit blocks most of a large plan,
    and each intent read is memory touched again)."""
    live = live_orders(observed)
    funding = funding_of(observed)
    # ``unvalued``: why the first working buy has no usable price. With one, the commitment is
    # unknown, and every buy that adds to it is blocked (it might spend cash that is not there).
    committed, unvalued_buys = working_buys_value(live.values(), observed)
    unvalued = unvalued_buys[0] if unvalued_buys else None
    blocked: dict[int, str] = {}
    allocation_additions: list[tuple[int, float]] = []
    standing: list[tuple[int, float]] = []
    for index in filterfalse(blocked_by.__contains__, range(len(intents))):
        intent = intents[index]
        order = intent.order
        if order is None or intent.purpose == "protective":
            continue
        if intent.action == "modify" and intent.order_id is not None:
            change = commitment_change(intent, live, observed)
        elif order.action == "BUY":
            # commitment_change with no working order to subtract: the new buy's value.
            change = order.quantity * (intent.estimated_price or 0.0) * intent.fx_rate
        else:
            # A sell that replaces no working order changes nothing: its change is 0, which
            # blocks nothing and adds 0 to a sum that never is -0.0.
            continue
        if is_conversion(intent):
            # Currency for currency: the total cash (in the base currency) stays the same.
            continue
        if (
            unvalued is not None
            and change > 0
            and (intent.kind == "allocations" or needs_cash(intent))
        ):
            blocked[index] = f"cash: {unvalued}: buys blocked"
            continue
        if intent.kind == "allocations":
            if change <= 0:
                committed += change
            else:
                allocation_additions.append((index, change))
        elif needs_cash(intent) and change > 0:
            standing.append((index, change))
        else:
            # A bracket or scale modify that shrinks a buy frees nothing until IB confirms it.
            committed += max(0.0, change)
    check = CashCheck(
        funding=funding,
        committed=committed,
        blocked=blocked,
        allocation_additions=allocation_additions,
    )
    _admit_standing(check, standing, intents)
    return check


def _admit_standing(
    check: CashCheck, standing: list[tuple[int, float]], intents: Sequence[Intent]
) -> None:
    """Admit the bracket entries and scale levels that buy (index, change) in their fixed order
    (see the module docstring) while they fit the funding; the others are blocked."""

    def admission_order(item: tuple[int, float]) -> tuple[int, str, int]:
        intent = intents[item[0]]
        return (_KIND_ORDER.get(intent.kind, len(_KIND_ORDER)), intent.rule, item[0])

    for index, change in sorted(standing, key=admission_order):
        intent = intents[index]
        if check.committed + change > check.funding.amount + _SLACK:
            check.blocked[index] = (
                f"cash: {intent.kind}.{intent.rule} {intent.leg} buy of {money(change)} would "
                f"commit {money(check.committed + change)} > {check.funding.describe()}"
            )
            continue
        check.committed += change
        check.standing_added += change
