"""Issue #12, failure 3, end to end: a bracket entry fills partly, then completes; its stop fills
while no tradectl process runs; ``tradectl apply`` runs again. Under every sim option for
bracket children (docs/sim.md, "Brackets on a partial parent fill") the stop covers exactly the
held quantity after each pass, read back from the sim's own state, and nothing is placed twice.

Each ``apply`` is a separate run of tradectl against the same journal and gateway: between two
runs no tradectl process exists, which is when the fills of this scenario happen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from tradectl.journal import Journal
from tradectl.sim import SimState
from tradectl.sim.model import SimOrder

from .conftest import ACCOUNT, DEFAULT_PRICES, Gateway, Outcome, write_rules

PARTIAL_FILL_MODES = ("activate_filled", "activate_full", "hold_until_complete")
PARENT_CANCEL_MODES = ("cancel", "keep_filled")
RULE = "nvda-partial"


def state(partial_fill: str, parent_cancel: str) -> SimState:
    return SimState.from_dict(
        {
            "account": {"id": ACCOUNT, "cash": 1_000_000},
            "symbols": {symbol: {"price": price} for symbol, price in DEFAULT_PRICES.items()},
            "brackets": {
                "children_on_partial_fill": partial_fill,
                "children_on_partial_parent_cancel": parent_cancel,
            },
        }
    )


def bracket() -> dict[str, object]:
    return {
        "brackets": {
            RULE: {
                "symbol": "NVDA",
                "side": "BUY",
                "quantity": 100,
                "entry": {"limit": 49.0},
                "stop_loss": {"price": 45.0},
                "take_profit": {"price": 60.0},
            }
        }
    }


def legs(gateway: Gateway) -> dict[str, SimOrder]:
    """The rule's working orders at the sim, by leg."""
    return {
        order.order_ref.rsplit(":", 1)[1]: order
        for order in gateway.sim.snapshot().open_orders
        if order.order_ref.startswith(f"tctl:{RULE}:")
    }


def held(gateway: Gateway) -> float:
    return gateway.positions().get("NVDA", 0.0)


def assert_protected(gateway: Gateway) -> float:
    """Stop and target each cover exactly the held quantity; returns it."""
    working = legs(gateway)
    quantity = held(gateway)
    assert working["stop"].remaining == quantity, (working, quantity)
    assert working["target"].remaining == quantity, (working, quantity)
    return quantity


def assert_working_standalone_protection(gateway: Gateway) -> float:
    """The held shares have exactly one stop and one target at the sim, each working now
    (``Submitted``, not held, no parent whose completion it would wait for), each covering
    exactly the held quantity; returns it."""
    quantity = assert_protected(gateway)
    active = [o for o in gateway.sim.snapshot().open_orders if o.symbol == "NVDA" and o.active]
    stops = [o for o in active if o.order_type == "STP"]
    targets = [o for o in active if o.action == "SELL" and o.order_type == "LMT"]
    for leg in (stops, targets):
        assert len(leg) == 1, active
        assert (leg[0].status, leg[0].held, leg[0].parent_id) == ("Submitted", False, 0), leg
        assert leg[0].remaining == quantity, (leg, quantity)
    return quantity


def fill_entry(gateway: Gateway, chunk: int) -> None:
    """Let the entry fill ``chunk`` shares (0: all that is left) while no tradectl runs."""
    sim = gateway.sim

    def fill() -> None:
        # The entry's limit (49) is marketable only for this one matching pass: the price goes
        # back up at once, so the next modify (which re-runs matching) fills nothing more.
        engine = sim.gateway.engine
        engine.state.matching.fill_chunk = chunk
        sim.gateway.publish(engine.set_price("NVDA", 48.5))
        sim.gateway.publish(engine.set_price("NVDA", 50.0))

    sim.call(fill)


def assert_each_order_placed_once(gateway: Gateway) -> None:
    """Modifies reuse an order id; a second id for one orderRef would be a duplicate order."""
    ids: dict[str, set[int]] = defaultdict(set)
    for line in gateway.messages("placeOrder"):
        ids[line["fields"]["orderRef"]].add(line["fields"]["orderId"])
    assert all(len(order_ids) == 1 for order_ids in ids.values()), dict(ids)


def assert_converged(outcome: Outcome) -> None:
    assert outcome.code == 0, outcome.out + outcome.err
    assert "Nothing to send." in outcome.out, outcome.out


def live_place_intents(state_dir: Path) -> list[str]:
    journal = Journal.open_read_only(state_dir)
    assert journal is not None
    try:
        return [intent.key for intent in journal.live_intents() if intent.action == "place"]
    finally:
        journal.close()


def partly_entered(
    start: Callable[[SimState], Gateway],
    apply: Callable[..., Outcome],
    rules_dir: Path,
    options: tuple[str, str],
) -> tuple[Gateway, Path]:
    """The bracket placed, its entry filled 30 of 100 while away, and one pass since: standalone
    stop and target (the attached children cancelled) work for the 30 while the entry works on."""
    gateway = start(state(*options))
    rules = write_rules(rules_dir, gateway, **bracket())
    first = apply(rules)
    assert first.code == 0, first.out + first.err
    assert sorted(legs(gateway)) == ["entry", "stop", "target"]
    fill_entry(gateway, 30)
    assert held(gateway) == 30
    detached = apply(rules)
    assert detached.code == 0, detached.out + detached.err
    assert assert_working_standalone_protection(gateway) == 30
    assert all(legs(gateway)[leg].order_ref.endswith("-kept:" + leg) for leg in ("stop", "target"))
    assert legs(gateway)["entry"].remaining == 70
    assert_converged(apply(rules))
    return gateway, rules


EVERY_OPTION = pytest.mark.parametrize(
    "options",
    [(fill, cancel) for fill in PARTIAL_FILL_MODES for cancel in PARENT_CANCEL_MODES],
    ids=lambda options: "-".join(options),
)


@EVERY_OPTION
def test_failure_3_the_stop_follows_a_partial_then_complete_entry_and_a_fill_while_away(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
    options: tuple[str, str],
) -> None:
    gateway, rules = partly_entered(gateway_factory, apply_in_process, tmp_path / "rules", options)

    fill_entry(gateway, 0)
    assert held(gateway) == 100
    completed = apply_in_process(rules)
    assert completed.code == 0, completed.out + completed.err
    assert assert_protected(gateway) == 100
    assert legs(gateway)["stop"].status == "Submitted"
    assert_converged(apply_in_process(rules))

    # The stop fires while no tradectl process runs: all 100 shares go, none stay unprotected.
    gateway.sim.control.set_price("NVDA", 44.0)
    assert held(gateway) == 0
    assert legs(gateway) == {}
    after = apply_in_process(rules)
    assert_converged(after)
    assert live_place_intents(tmp_path / "state") == []
    assert_each_order_placed_once(gateway)
    assert sum(1 for ref in gateway.placed_refs() if ref.endswith(":entry")) == 1


@EVERY_OPTION
def test_the_rest_of_a_partly_filled_entry_cancelled_while_away_leaves_its_fill_protected(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
    options: tuple[str, str],
) -> None:
    """IB cancels a partly filled DAY entry's rest at the close; what it would do with attached
    children then is unknown (both options). The 30 shares stay protected either way."""
    gateway, rules = partly_entered(gateway_factory, apply_in_process, tmp_path / "rules", options)
    sim = gateway.sim
    entry = legs(gateway)["entry"]
    sim.call(
        lambda: sim.gateway.publish(sim.gateway.engine.cancel(entry.client_id, entry.order_id))
    )
    assert held(gateway) == 30
    # The standalone legs have no parent, so the cancel of the entry's rest leaves them working,
    # whatever the sim does with attached children.
    assert assert_working_standalone_protection(gateway) == 30
    assert sorted(legs(gateway)) == ["stop", "target"]

    assert_converged(apply_in_process(rules))
    assert assert_working_standalone_protection(gateway) == 30

    gateway.sim.control.set_price("NVDA", 44.0)
    assert held(gateway) == 0
    assert_converged(apply_in_process(rules))
    assert live_place_intents(tmp_path / "state") == []
    assert sum(1 for ref in gateway.placed_refs() if ref.endswith(":entry")) == 1


@pytest.mark.parametrize("partial_fill", PARTIAL_FILL_MODES)
def test_failure_3_a_stop_left_at_the_partial_size_fills_while_away_and_is_replaced(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
    partial_fill: str,
) -> None:
    """The issue's exact sequence: the entry completes and the stop fires before any tradectl
    pass could resize the stop. The stop is standalone since the partial fill, so it is still
    at 30 and 70 shares stay long under every option; the restart closes the filled stop's
    place intent (its completed record has order id 0) and places a stop for the 70 instead of
    refusing it as "already in flight or working"."""
    options = (partial_fill, "cancel")
    gateway, rules = partly_entered(gateway_factory, apply_in_process, tmp_path / "rules", options)

    fill_entry(gateway, 0)
    gateway.sim.control.set_price("NVDA", 44.0)
    # The price recovers above the stop level, so a replacement stop rests instead of firing.
    gateway.sim.control.set_price("NVDA", 46.0)
    left = held(gateway)
    assert left == 70

    restarted = apply_in_process(rules)
    assert restarted.code == 0, restarted.out + restarted.err
    assert "already in flight" not in restarted.out + restarted.err
    assert assert_working_standalone_protection(gateway) == 70
    assert_converged(apply_in_process(rules))
    assert live_place_intents(tmp_path / "state") == [
        legs(gateway)[leg].order_ref for leg in ("stop", "target")
    ]
    working = [o.order_ref for o in gateway.sim.snapshot().open_orders]
    assert len(working) == len(set(working)), working
    assert sum(1 for ref in gateway.placed_refs() if ref.endswith(":entry")) == 1


@EVERY_OPTION
def test_standalone_protection_grows_with_each_entry_fill_and_never_exceeds_the_position(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
    options: tuple[str, str],
) -> None:
    """Entry fills of 30, 30 and the last 40, a pass after each: a working stop and target for
    exactly what is held after every pass, grown by modify (one order id each), the stop never
    larger than the position, the entry placed once."""
    gateway, rules = partly_entered(gateway_factory, apply_in_process, tmp_path / "rules", options)
    standalone = {leg: legs(gateway)[leg].order_id for leg in ("stop", "target")}

    fill_entry(gateway, 30)
    assert held(gateway) == 60
    # Until the next pass the standalone stop stays at 30: smaller than the position, never larger.
    assert legs(gateway)["stop"].remaining == 30
    grown = apply_in_process(rules)
    assert grown.code == 0, grown.out + grown.err
    assert assert_working_standalone_protection(gateway) == 60
    assert legs(gateway)["entry"].remaining == 40
    assert_converged(apply_in_process(rules))

    fill_entry(gateway, 0)
    assert held(gateway) == 100
    assert "entry" not in legs(gateway)
    completed = apply_in_process(rules)
    assert completed.code == 0, completed.out + completed.err
    assert assert_working_standalone_protection(gateway) == 100
    assert {leg: legs(gateway)[leg].order_id for leg in ("stop", "target")} == standalone
    assert_converged(apply_in_process(rules))

    assert_each_order_placed_once(gateway)
    assert sum(1 for ref in gateway.placed_refs() if ref.endswith(":entry")) == 1
