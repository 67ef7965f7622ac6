"""``plan(rules, observed, now) -> Plan``: the whole reconcile decision, as a pure function.

Order of work: index the observed account; plan brackets and scales (standing orders) and then
allocations (which need to know the cash those standing orders take); drop what is already in
flight; order the intents (cancels, sells, buys); run the risk gate last.
"""

from __future__ import annotations

from datetime import datetime

from daemon.planner.allocations import plan_allocations
from daemon.planner.common import Book, Draft, ordered
from daemon.planner.gate import gate
from daemon.planner.types import Observed, Plan
from schemas.models import RuleSet


def plan(rules: RuleSet, observed: Observed, now: datetime) -> Plan:
    book = Book(observed, now)
    draft = Draft()
    for owned in book.owned:
        if owned.kind is None:
            draft.notes.append(
                f"order {owned.order.order_id} ({owned.order.symbol}) has a tradectl orderRef "
                f"of unknown form {owned.order.order_ref!r}; not touched"
            )

    standing = Draft()
    other_buys = sum(
        intent.value
        for group in standing.groups
        for intent in group.intents
        if intent.action == "place" and intent.order is not None and intent.order.action == "BUY"
    )
    draft.extend(standing)
    draft.extend(plan_allocations(rules, book, other_buys))

    groups = []
    for group in draft.groups:
        waiting = [intent.key for intent in group.intents if intent.key in observed.in_flight]
        if waiting:
            draft.notes.append(
                f"{group.intents[0].kind}.{group.intents[0].rule}: waiting for the broker to "
                f"acknowledge {waiting[0]}; not planned again"
            )
            continue
        groups.append(group)

    manual = observed.manual_orders
    if manual:
        draft.notes.append(
            f"{len(manual)} manual order(s) without a tradectl orderRef observed; not touched"
        )
    drafted = Plan(intents=tuple(ordered(groups)), notes=tuple(draft.notes), manual_orders=manual)
    return gate(drafted, rules, observed)
