"""Allocations whose targets come from a file (targets_from): shares mode, staleness, the
turnover hold and its acceptance, decided by the pure planner from what the runtime read."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tradectl.planner import plan
from tradectl.planner.domain import (
    AcceptedTargets,
    FileTargets,
    Observed,
    Quote,
    TargetsMode,
    TargetsSource,
)
from tradectl.planner.legs import order_ref
from tradectl.planner.targets import decide_targets, turnover
from tradectl.schemas.models import TargetsFrom, rule_generation

from .builders import NOW, observed, rule_set, summary, working
from .simulator import apply


def file_targets(
    targets: dict[str, float],
    *,
    mode: TargetsMode = "shares",
    as_of: datetime = NOW - timedelta(minutes=10),
    source: str = "as_of column",
) -> FileTargets:
    return FileTargets(
        path="signals/momentum.csv",
        mode=mode,
        targets=targets,
        as_of=as_of,
        as_of_source=source,  # type: ignore[arg-type]
        content_hash="h" + str(sorted(targets.items())),
    )


def signal_rules(max_turnover: float = 1.0, **allocation: Any) -> Any:
    return rule_set(
        allocations={
            "signal": {
                "capital": {"amount": 50_000},
                "order": {"type": "market"},
                "targets_from": {
                    "file": "signals/momentum.csv",
                    "max_age": "2h",
                    "max_turnover": max_turnover,
                },
                **allocation,
            }
        }
    )


def with_file(account: Observed, targets: FileTargets, *, accepted: bool = True) -> Observed:
    baseline = (
        {"signal": AcceptedTargets(targets.content_hash, targets.mode, targets.targets)}
        if accepted
        else {}
    )
    return replace(
        account,
        targets_sources={"signal": TargetsSource(targets.path, targets)},
        accepted_targets=baseline,
    )


def test_shares_target_buys_exactly_the_shares_then_nothing() -> None:
    rules = signal_rules()
    targets = file_targets({"AAPL": 100})
    account = with_file(observed(prices={"AAPL": 190.0}), targets)

    first = plan(rules, account, NOW)

    assert summary(first.intents) == [("place", "AAPL", "BUY", 100, None, None)]
    assert first.targets[0].status == "trading"
    after = apply(first, account)
    assert after.position("AAPL") == 100
    assert plan(rules, after, NOW).is_empty


def test_shares_target_zero_sells_the_whole_position() -> None:
    rules = signal_rules()
    account = with_file(
        observed(prices={"AAPL": 190.0}, positions={"AAPL": 100}), file_targets({"AAPL": 0})
    )

    result = plan(rules, account, NOW)

    assert summary(result.intents) == [("place", "AAPL", "SELL", 100, None, None)]
    assert apply(result, account).position("AAPL") == 0


def test_shares_worth_more_than_the_capital_hold_the_allocation() -> None:
    rules = signal_rules()
    account = with_file(observed(prices={"AAPL": 190.0}), file_targets({"AAPL": 1000}))

    result = plan(rules, account, NOW)

    assert result.intents == ()
    assert any("more than the rule's capital 50,000" in note for note in result.notes)


def test_shares_target_is_capped_by_the_position_limit() -> None:
    rules = rule_set(
        risk={"max_position_fraction": 0.1},
        allocations={
            "signal": {
                "capital": {"amount": 50_000},
                "order": {"type": "market"},
                "targets_from": {"file": "t.csv", "max_age": "2h", "max_turnover": 1},
            }
        },
    )
    account = with_file(observed(prices={"AAPL": 100.0}), file_targets({"AAPL": 200}))

    result = plan(rules, account, NOW)

    # 10 % of 100,000 NAV at 100 = 100 shares, not the 200 the file asks for.
    assert summary(result.intents) == [("place", "AAPL", "BUY", 100, None, None)]


def test_weights_from_a_file_trade_like_inline_weights() -> None:
    inline = rule_set(
        allocations={
            "signal": {
                "capital": {"amount": 50_000},
                "order": {"type": "market"},
                "targets": {"AAPL": 0.5, "MSFT": 0.3},
            }
        }
    )
    account = observed(prices={"AAPL": 190.0, "MSFT": 410.0})
    from_file = with_file(account, file_targets({"AAPL": 0.5, "MSFT": 0.3}, mode="weight"))

    assert summary(plan(signal_rules(), from_file, NOW).intents) == summary(
        plan(inline, account, NOW).intents
    )


def test_stale_by_as_of_holds_even_when_the_file_was_just_written() -> None:
    """as_of wins over the modification time: a strategy that rewrites yesterday's signal
    (or a copy that refreshes the mtime) must not look fresh."""
    rules = signal_rules()
    stale = file_targets({"AAPL": 100}, as_of=NOW - timedelta(hours=3))
    account = with_file(observed(prices={"AAPL": 190.0}), stale)

    result = plan(rules, account, NOW)

    assert result.intents == ()
    decision = result.targets[0]
    assert decision.status == "stale"
    assert "as_of column 2026-11-25T12:30:00+00:00 is 3h00m old, more than max_age 2h00m" in (
        decision.reason
    )


def test_stale_by_modification_time_when_there_is_no_as_of() -> None:
    stale = file_targets(
        {"AAPL": 100}, as_of=NOW - timedelta(hours=2, minutes=1), source="modification time"
    )
    result = plan(signal_rules(), with_file(observed(prices={"AAPL": 190.0}), stale), NOW)

    assert result.targets[0].status == "stale"
    assert "modification time" in result.targets[0].reason


def test_an_as_of_in_the_future_holds() -> None:
    future = file_targets({"AAPL": 100}, as_of=NOW + timedelta(hours=1))
    result = plan(signal_rules(), with_file(observed(prices={"AAPL": 190.0}), future), NOW)

    assert result.targets[0].status == "stale"
    assert "in the future" in result.targets[0].reason


def test_a_held_allocation_cancels_its_working_orders_and_keeps_its_position() -> None:
    rules = signal_rules()
    generation = rule_generation(rules.allocations["signal"])
    order = working(
        7, "AAPL", "BUY", 50, ref=order_ref("signal", generation, "AAPL.abc123"), order_type="MKT"
    )
    stale = file_targets({"AAPL": 100}, as_of=NOW - timedelta(hours=5))
    account = with_file(
        observed(prices={"AAPL": 190.0}, positions={"AAPL": 50}, orders=[order]), stale
    )

    result = plan(rules, account, NOW)

    assert [(i.action, i.order_id) for i in result.intents] == [("cancel", 7)]
    assert "allocation held" in result.intents[0].reason


def test_no_valid_file_holds_with_the_error() -> None:
    account = replace(
        observed(prices={"AAPL": 190.0}),
        targets_sources={
            "signal": TargetsSource("signals/momentum.csv", None, "signals/momentum.csv:3:2: x")
        },
    )
    result = plan(signal_rules(), account, NOW)

    assert result.intents == ()
    assert result.targets[0].status == "invalid"
    assert "signals/momentum.csv:3:2: x" in result.targets[0].reason


def test_an_invalid_new_file_keeps_trading_on_the_last_good_one() -> None:
    good = file_targets({"AAPL": 100})
    account = replace(
        observed(prices={"AAPL": 190.0}),
        targets_sources={"signal": TargetsSource(good.path, good, "momentum.csv:2:1: bad")},
        accepted_targets={"signal": AcceptedTargets(good.content_hash, "shares", good.targets)},
    )
    result = plan(signal_rules(), account, NOW)

    assert summary(result.intents) == [("place", "AAPL", "BUY", 100, None, None)]
    assert "the file as it is now is not used: momentum.csv:2:1: bad" in result.targets[0].reason


def test_a_jump_above_max_turnover_is_held_until_accepted() -> None:
    rules = rule_set(
        allocations={
            "book": {
                "capital": {"amount": 50_000},
                "order": {"type": "market"},
                "targets_from": {"file": "t.csv", "max_age": "2h", "max_turnover": 0.5},
            }
        }
    )
    old = {"AAPL": 0.5, "MSFT": 0.5}
    new = file_targets({"AAPL": 0.0, "MSFT": 0.2}, mode="weight")
    account = replace(
        observed(prices={"AAPL": 190.0, "MSFT": 410.0}, positions={"AAPL": 131, "MSFT": 60}),
        targets_sources={"book": TargetsSource(new.path, new)},
        accepted_targets={"book": AcceptedTargets("old", "weight", old)},
    )

    held = plan(rules, account, NOW)

    assert held.intents == ()
    decision = held.targets[0]
    assert (decision.status, decision.turnover) == ("held", 0.8)
    assert "would turn over 80% of the allocation" in decision.reason
    assert "tradectl accept book" in decision.reason

    accepted = replace(
        account, accepted_targets={"book": AcceptedTargets(new.content_hash, "weight", new.targets)}
    )
    traded = plan(rules, accepted, NOW)
    assert summary(traded.intents) == [
        ("place", "AAPL", "SELL", 131, None, None),
        ("place", "MSFT", "SELL", 36, None, None),
    ]


def test_the_first_file_is_a_jump_from_nothing() -> None:
    rules = signal_rules(max_turnover=0.5)
    account = with_file(
        observed(prices={"AAPL": 190.0}), file_targets({"AAPL": 100}), accepted=False
    )

    result = plan(rules, account, NOW)

    assert result.intents == ()
    assert result.targets[0].status == "held"
    assert "from nothing (first file)" in result.targets[0].reason


def test_a_small_change_trades_without_acceptance() -> None:
    rules = signal_rules(max_turnover=0.5)
    new = file_targets({"AAPL": 110})
    account = replace(
        observed(prices={"AAPL": 190.0}, positions={"AAPL": 100}),
        targets_sources={"signal": TargetsSource(new.path, new)},
        accepted_targets={"signal": AcceptedTargets("old", "shares", {"AAPL": 100})},
    )

    result = plan(rules, account, NOW)

    assert summary(result.intents) == [("place", "AAPL", "BUY", 10, None, None)]
    assert result.targets[0].status == "trading"
    assert result.targets[0].turnover is not None
    assert abs(result.targets[0].turnover - 10 / 110) < 1e-9


def quotes(prices: dict[str, float]) -> dict[str, Quote]:
    return {symbol: Quote(symbol, price, NOW) for symbol, price in prices.items()}


def test_turnover_by_hand() -> None:
    weights = file_targets({"AAPL": 0.3, "MSFT": 0.3, "SPY": 0.4}, mode="weight")
    same = AcceptedTargets("x", "weight", {"AAPL": 0.3, "MSFT": 0.3, "SPY": 0.4})
    rotate = AcceptedTargets("x", "weight", {"GOOGL": 1.0})
    trim = AcceptedTargets("x", "weight", {"AAPL": 0.4, "MSFT": 0.3, "SPY": 0.3})
    assert turnover(same, weights, {}) == 0.0
    assert turnover(rotate, weights, {}) == 1.0
    assert turnover(None, weights, {}) == 1.0
    assert abs(float(turnover(trim, weights, {})) - 0.1) < 1e-12
    assert turnover(AcceptedTargets("x", "shares", {"AAPL": 1}), weights, {}) == 1.0
    shares = file_targets({"AAPL": 100, "MSFT": 0})
    before = AcceptedTargets("x", "shares", {"AAPL": 50, "MSFT": 10})
    # bought 50 x 200 = 10,000; sold 10 x 400 = 4,000; books 14,000 and 20,000.
    assert turnover(before, shares, quotes({"AAPL": 200, "MSFT": 400})) == 0.5
    assert turnover(before, shares, quotes({"MSFT": 400})) == "no price for AAPL"


@given(
    st.dictionaries(st.sampled_from(["A", "B", "C", "D"]), st.floats(0, 0.25), min_size=1),
    st.dictionaries(st.sampled_from(["A", "B", "C", "D"]), st.floats(0, 0.25), min_size=1),
)
def test_turnover_is_a_share_of_the_book(old: dict[str, float], new: dict[str, float]) -> None:
    measured = turnover(AcceptedTargets("x", "weight", old), file_targets(new, mode="weight"), {})
    assert isinstance(measured, float)
    assert 0.0 <= measured <= 1.0 + 1e-9
    back = turnover(AcceptedTargets("y", "weight", new), file_targets(old, mode="weight"), {})
    assert abs(measured - float(back)) < 1e-9


@given(
    st.dictionaries(
        st.sampled_from(["AAPL", "MSFT", "SPY"]), st.integers(0, 60), min_size=1, max_size=3
    ),
    st.dictionaries(st.sampled_from(["AAPL", "MSFT", "SPY"]), st.integers(0, 120)),
)
def test_shares_targets_converge_in_one_pass(
    targets: dict[str, int], positions: dict[str, int]
) -> None:
    # Capital enough for any generated targets (worth more, the rule would hold instead).
    rules = signal_rules(min_trade_value=0, capital={"amount": 200_000})
    prices = {"AAPL": 190.0, "MSFT": 410.0, "SPY": 450.0}
    file = file_targets({symbol: float(n) for symbol, n in targets.items()})
    account = with_file(
        observed(
            nav=1_000_000, prices=prices, positions={s: float(n) for s, n in positions.items()}
        ),
        file,
    )

    after = apply(plan(rules, account, NOW), account)

    for symbol, wanted in targets.items():
        assert after.position(symbol) == wanted
    assert plan(rules, after, NOW).is_empty


def test_decide_targets_without_a_source_is_invalid() -> None:
    targets_from = TargetsFrom.model_validate({"file": "t.csv", "max_age": "1h"})
    decision = decide_targets("x", targets_from, None, None, {}, NOW)
    assert (decision.status, decision.reason) == ("invalid", "no valid targets file: not read")
