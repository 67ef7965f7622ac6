"""The daemon's pass logic through the in-memory Broker (tests/fakes/broker.py): the real
``IbBrokerSession`` on its broker thread, the real journal and ``reconcile_pass``, with no
socket and no simulator, in milliseconds per test. What the tests assert is what reached the
broker (``FakeMarket.wire`` and its orders) and what the journal says.

The simulator tests (tests/daemon/test_e2e.py and others) stay the proof that the IB adapter
speaks the real protocol; these prove the orchestration: reconnect, breaker, halt, rule swap and
a fill followed by a protective modify."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.fakes.broker import FakeBroker, FakeMarket
from tradectl.journal import BrokerRecord, Journal
from tradectl.journal.keys import BREAKER_KEY
from tradectl.runtime.acting import resync
from tradectl.schemas.models import RuleSet
from tradectl.service.broker import IbBrokerSession
from tradectl.service.engine import PassContext, PassSummary
from tradectl.timezones import trading_day_start

from .fakes import VALID_RULES, rules_text

T = TypeVar("T")

# The daemon tests' rules with the ladder swapped for a bracket.
BRACKET_RULES = VALID_RULES[: VALID_RULES.index("scales:")] + (
    "brackets:\n"
    "  nvda:\n"
    "    {symbol: NVDA, side: BUY, quantity: 100, entry: {limit: 49.0},\n"
    "     stop_loss: {price: 45.0}, take_profit: {price: 60.0}}\n"
)


def rule_set(text: str) -> RuleSet:
    return RuleSet.model_validate(yaml.safe_load(text))


def context(*, halted: bool = False, may_send: Callable[[], bool] = lambda: True) -> PassContext:
    return PassContext(
        reasons=frozenset({"test"}),
        halted=halted,
        allocations_due=True,
        may_send=may_send,
        abandon=lambda: False,
    )


class Daemon:
    """An ``IbBrokerSession`` whose every connection is a new ``FakeBroker`` on one market."""

    def __init__(self, state_dir: Path, market: FakeMarket) -> None:
        self.market = market
        self.brokers: list[FakeBroker] = []
        # The fake never acknowledges (answers come with the next resync): no waiting for them.
        self.session = IbBrokerSession(
            state_dir, clock=market.clock, ack_timeout=0.0, open_broker=self._open
        )
        self.events: list[str] = []
        self.session.events.disconnected = lambda: self.events.append("disconnected")
        self.session.events.order_filled = lambda rule, what: self.events.append(f"fill {rule}")

    def _open(self, rules: RuleSet, journal: Journal) -> FakeBroker:
        broker = FakeBroker(self.market)
        self.brokers.append(broker)
        return broker

    async def reconcile(
        self, rules: RuleSet, pass_context: PassContext | None = None
    ) -> PassSummary:
        return await self.session.reconcile(rules, pass_context or context())


def run(scenario: Callable[[Daemon], Coroutine[Any, Any, T]], daemon: Daemon) -> T:
    async def main() -> T:
        await daemon.session.open()
        try:
            return await scenario(daemon)
        finally:
            await daemon.session.close()

    return asyncio.run(main())


def ladder_market() -> FakeMarket:
    return FakeMarket(prices={"AAPL": 105.0})


def test_halt_sends_nothing_and_a_halt_mid_pass_stops_after_the_group_in_flight(
    tmp_path: Path,
) -> None:
    rules = rule_set(rules_text(10))
    answers = iter([True, False])

    async def scenario(daemon: Daemon) -> tuple[PassSummary, PassSummary]:
        await daemon.session.connect(rules)
        halted = await daemon.reconcile(rules, context(halted=True))
        assert daemon.market.wire == []
        halted_mid_pass = await daemon.reconcile(rules, context(may_send=lambda: next(answers)))
        return halted, halted_mid_pass

    daemon = Daemon(tmp_path, ladder_market())
    halted, stopped = run(scenario, daemon)
    assert (halted.sent, halted.planned, halted.blocked) == (0, 2, 2)
    # The ladder's two levels are two groups: the halt came between them.
    assert stopped.stopped_early
    assert stopped.sent == 1
    assert [action for action, _, _ in daemon.market.wire] == ["place"]


def test_the_breaker_trips_journals_its_day_and_stops_opening_orders(tmp_path: Path) -> None:
    rules = rule_set(rules_text(10))
    market = ladder_market()
    # IB's daily P&L: -6,000 on a 100,000 account is a 5.7 % loss, past the rules' 5 %.
    market.daily_pnl = -6_000.0

    async def scenario(daemon: Daemon) -> tuple[PassSummary, str | None]:
        await daemon.session.connect(rules)
        summary = await daemon.reconcile(rules)
        journal = daemon.session._journal_or_fail()
        return summary, await daemon.session._thread.submit(lambda: journal.get_state(BREAKER_KEY))

    daemon = Daemon(tmp_path, market)
    summary, breaker_day = run(scenario, daemon)
    assert summary.breaker_tripped is not None and "5.66%" in summary.breaker_tripped
    assert breaker_day is not None
    assert summary.sent == 0
    assert daemon.market.wire == []


def test_after_a_reconnect_the_resync_adopts_what_was_sent_and_nothing_is_sent_twice(
    tmp_path: Path,
) -> None:
    rules = rule_set(rules_text(10))

    async def scenario(daemon: Daemon) -> dict[str, str]:
        await daemon.session.connect(rules)
        first = await daemon.reconcile(rules)
        assert first.sent == 2
        # The connection drops before IB acknowledged anything (the fake never does).
        await daemon.session._thread.submit(daemon.brokers[0].disconnect)
        await daemon.session.connect(rules)
        await daemon.session.resync(rules)
        second = await daemon.reconcile(rules)
        assert (second.sent, second.planned) == (0, 0)
        journal = daemon.session._journal_or_fail()
        intents = await daemon.session._thread.submit(lambda: journal.intents(since_id=0))
        return {intent.key: intent.state for intent in intents}

    daemon = Daemon(tmp_path, ladder_market())
    states = run(scenario, daemon)
    assert daemon.events.count("disconnected") == 1
    assert len(daemon.brokers) == 2
    assert daemon.brokers[0].session != daemon.brokers[1].session
    assert [action for action, _, _ in daemon.market.wire] == ["place", "place"]
    assert sorted(states.values()) == ["acknowledged", "acknowledged"]


def test_a_rule_swap_changes_the_working_orders_in_place(tmp_path: Path) -> None:
    before, after = rule_set(rules_text(10)), rule_set(rules_text(20))

    async def scenario(daemon: Daemon) -> None:
        await daemon.session.connect(before)
        assert (await daemon.reconcile(before)).sent == 2
        swapped = await daemon.reconcile(after)
        assert swapped.sent >= 1

    daemon = Daemon(tmp_path, ladder_market())
    run(scenario, daemon)
    orders = list(daemon.market.orders.values())
    assert len(orders) == 2
    assert sum(order.total_quantity for order in orders) == 20
    assert all(order.owned for order in orders)


def test_fills_lead_to_protection_of_the_held_shares_and_then_a_protective_modify(
    tmp_path: Path,
) -> None:
    rules = rule_set(BRACKET_RULES)
    market = FakeMarket(prices={"NVDA": 50.0}, cash=1_000_000.0)

    def stops() -> list[float]:
        return [
            order.total_quantity
            for order in market.orders.values()
            if order.order_type == "STP" and order.status == "Submitted"
        ]

    async def scenario(daemon: Daemon) -> None:
        await daemon.session.connect(rules)
        assert (await daemon.reconcile(rules)).sent == 3
        assert (await daemon.reconcile(rules)).sent == 0
        entry = market.working(":entry")
        broker = daemon.brokers[-1]
        # The entry fills in part: its attached stop is not active yet, so the held 40 shares
        # get a stop of their own.
        await daemon.session._thread.submit(lambda: broker.fill(entry.order_id, 40))
        await daemon.reconcile(rules)
        assert stops() == [40]
        sent_before = len(market.wire)
        # More of it fills: that stop grows to the held 70 shares, modified in place.
        await daemon.session._thread.submit(lambda: broker.fill(entry.order_id, 30))
        await daemon.reconcile(rules)
        (stop,) = [o for o in market.orders.values() if o.order_type == "STP"]
        assert ("modify", stop.order_id, stop.order_ref) in market.wire[sent_before:]

    daemon = Daemon(tmp_path, market)
    run(scenario, daemon)
    assert daemon.events.count("fill nvda") == 2
    assert market.positions == {"NVDA": 70}
    assert stops() == [70]


class StreamedBroker(FakeBroker):
    """A broker answering the resync from streamed state until something is suspected."""

    def __init__(self, market: FakeMarket) -> None:
        super().__init__(market)
        self.streamed_answers = 0

    def broker_records(self, day_start: datetime) -> list[BrokerRecord]:
        self.last_records_fresh = bool(self.suspicions)
        self.streamed_answers += not self.last_records_fresh
        return super().broker_records(day_start)


def test_the_journal_is_changed_only_from_a_fresh_read(tmp_path: Path) -> None:
    rules = rule_set(rules_text(10))
    market = ladder_market()

    async def scenario(daemon: Daemon) -> list[str]:
        await daemon.session.connect(rules)
        assert (await daemon.reconcile(rules)).sent == 2
        journal = daemon.session._journal_or_fail()
        streamed = StreamedBroker(market)
        # The sent orders now show at the broker: the resync would acknowledge them.
        await daemon.session._thread.submit(
            lambda: resync(streamed, journal, trading_day_start(market.clock()))
        )
        assert streamed.streamed_answers == 1
        states = await daemon.session._thread.submit(
            lambda: [intent.state for intent in journal.live_intents()]
        )
        assert states == ["acknowledged", "acknowledged"]
        return streamed.suspicions

    suspicions = run(scenario, Daemon(tmp_path, market))
    assert suspicions == ["the streamed state would change 2 journaled intent(s)"]
