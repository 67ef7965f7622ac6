"""Price increments and currencies end to end (docs/planning.md, "Price increments" and
"Currencies"): tradectl against the sim's market rules, which reject an off-tick price with
IB's error 110, and against a EUR-base account, read back from the sim's own order book."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.apply.conftest import ACCOUNT, Gateway, Outcome, write_rules
from tradectl.cli import main
from tradectl.sim import SimState

pytestmark = pytest.mark.e2e

# The sim's rule 1002 (a European equity table): 0.05 from 100, 0.1 from 200. Its minTick
# (0.001) is right only below 1: rounding every price to it is what IB rejects with 110.
BANDED = {"price": 205.0, "exchange": "NYSE", "market_rule": 1002, "min_tick": 0.001}


def banded_state() -> SimState:
    return SimState.from_dict(
        {
            "account": {"id": ACCOUNT, "cash": 1_000_000},
            "symbols": {"BAND": BANDED, "EDGE": {**BANDED, "price": 210.0}},
        }
    )


def off_tick_rejections(output: str) -> list[str]:
    """The lines that report IB's error 110, a price off the contract's tick. Matched by its
    words: a bare "110" also turns up in pytest's temporary paths (pytest-1103)."""
    return [
        line
        for line in output.splitlines()
        if "error 110" in line or "minimum price variation" in line
    ]


def placed(gateway: Gateway) -> dict[str, tuple[float, float]]:
    """orderRef leg -> (limit, aux) of every order placed."""
    found = {}
    for line in gateway.messages("placeOrder"):
        fields = line["fields"]
        leg = ":".join(fields["orderRef"].split(":")[1::2])
        found[leg] = (float(fields["lmtPrice"] or 0), float(fields["auxPrice"] or 0))
    return found


def test_prices_follow_the_band_they_fall_in_and_ib_accepts_every_one(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
) -> None:
    gateway = gateway_factory(banded_state())
    rules = write_rules(
        tmp_path / "rules",
        gateway,
        allocations={
            "core": {
                "capital": {"amount": 20_000},
                "drift": {"absolute": 0.01},
                "order": {"type": "limit", "offset_bps": 10},
                "targets": {"BAND": 1.0},
            }
        },
        brackets={
            # The entry lies exactly on the 200 edge: in the 0.1 band, so valid as it is.
            "edge": {
                "symbol": "EDGE",
                "side": "BUY",
                "quantity": 10,
                "entry": {"limit": 200.0},
                "stop_loss": {"price": 190.03},
                "take_profit": {"price": 220.07},
            }
        },
        risk={"max_position_fraction": 1.0, "max_risk_per_trade_fraction": 1.0},
    )
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out + outcome.err

    legs = placed(gateway)
    # 205 x 1.001 = 205.205: a BUY limit rounds down to the 0.1 band's 205.2, never up.
    [allocation] = [prices for leg, prices in legs.items() if leg.startswith("core:")]
    assert allocation == (205.2, 0.0)
    assert legs["edge:entry"] == (200.0, 0.0)
    # The stop rounds towards the entry (up, to the 0.05 band's 190.05); the target too (down,
    # to the 0.1 band's 220.0).
    assert legs["edge:stop"] == (0.0, 190.05)
    assert legs["edge:target"] == (220.0, 0.0)
    assert not off_tick_rejections(outcome.out + outcome.err)
    # IB took every price: the allocation filled (20,000 / 205 = 97 shares), the entry works.
    assert gateway.positions() == {"BAND": 97.0}
    snapshot = gateway.sim.snapshot()
    assert [(o.symbol, o.lmt_price) for o in snapshot.open_orders if o.parent_id == 0] == [
        ("EDGE", 200.0)
    ]
    # Both listings share rule 1002: IB is asked for it once.
    assert len(gateway.messages("reqMarketRule")) == 1

    again = apply_in_process(rules)
    assert again.code == 0, again.out + again.err
    assert len(gateway.messages("reqMarketRule")) == 1, "the journal keeps the bands"
    assert len(gateway.messages("placeOrder")) == 4


def eur_account(cash_balances: dict[str, float] | None = None) -> SimState:
    """A EUR-base account: 100,000 EUR and whatever else ``cash_balances`` holds; US stocks
    priced in USD, the rate from the sim's EUR.USD pair (1.16 USD a euro)."""
    return SimState.from_dict(
        {
            "account": {
                "id": ACCOUNT,
                "currency": "EUR",
                "cash": 100_000,
                "cash_balances": cash_balances or {},
            },
            "symbols": {
                "AAPL": {"price": 116.0},
                "MSFT": {"price": 232.0},
                "EUR.USD": {
                    "symbol": "EUR",
                    "sec_type": "CASH",
                    "currency": "USD",
                    "price": 1.16,
                    "min_tick": 0.00005,
                },
            },
        }
    )


ALLOCATION: dict[str, Any] = {
    "core": {
        "capital": {"fraction_of_nav": 0.9},
        "drift": {"absolute": 0.01},
        "order": {"type": "market"},
        "targets": {"AAPL": 0.3, "MSFT": 0.3},
    }
}


def run_plan(rules: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["plan", str(rules)])
    return code, capsys.readouterr().out


def test_block_holds_buys_in_a_currency_the_eur_account_lacks(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    gateway = gateway_factory(eur_account())
    rules = write_rules(tmp_path / "rules", gateway, allocations=ALLOCATION)
    code, shown = run_plan(rules, capsys)
    assert code == 2, shown
    assert "account.fx: buys in USD would commit USD" in shown
    assert "account.fx is block" in shown

    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out + outcome.err
    assert gateway.messages("placeOrder") == [], "nothing is sent in a currency not held"
    assert gateway.positions() == {}


def test_usd_buys_are_sized_in_euros_at_ibs_rate(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
) -> None:
    gateway = gateway_factory(eur_account({"USD": 150_000}))
    rules = write_rules(
        tmp_path / "rules", gateway, allocations=ALLOCATION, risk={"max_order_value": 80_000}
    )
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out + outcome.err
    # NAV: 100,000 EUR + 150,000 USD / 1.16 = 229,310.34 EUR; 0.3 of 0.9 of it is 61,913.79
    # EUR a target. AAPL at 116 USD is 100 EUR a share: 619 shares; MSFT at 200 EUR: 309.
    assert gateway.positions() == {"AAPL": 619.0, "MSFT": 309.0}
    snapshot = gateway.sim.snapshot()
    assert snapshot.cash_balances["USD"] < 150_000 - 143_000


def test_a_currency_held_short_holds_the_buy_it_cannot_pay(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
) -> None:
    # 100,000 USD: AAPL's 502 shares take 58,232 USD; MSFT's 251 (another 58,232) do not fit.
    gateway = gateway_factory(eur_account({"USD": 100_000}))
    rules = write_rules(
        tmp_path / "rules", gateway, allocations=ALLOCATION, risk={"max_order_value": 80_000}
    )
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out + outcome.err
    assert gateway.positions() == {"AAPL": 502.0}
    assert "account.fx: buys in USD would commit USD 116,464 > USD 100,000 held" in outcome.out


def test_convert_buys_the_dollars_first_then_the_stocks_and_never_twice(
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    tmp_path: Path,
) -> None:
    gateway = gateway_factory(eur_account())
    rules = write_rules(
        tmp_path / "rules",
        gateway,
        account={"id": ACCOUNT, "fx": "convert"},
        allocations=ALLOCATION,
        risk={"max_order_value": 80_000},
    )
    first = apply_in_process(rules)
    assert first.code == 0, first.out + first.err
    # Only the conversion goes: AAPL 270 x 116 + MSFT 135 x 232 = 62,640 USD, +1%:
    # 63,266.40 USD, bought by selling euros on EUR.USD (1.16 USD a euro).
    [conversion] = gateway.messages("placeOrder")
    fields = conversion["fields"]
    contract = fields["contract"]
    assert (contract["secType"], contract["symbol"], contract["currency"]) == ("CASH", "EUR", "USD")
    assert contract["exchange"] == "IDEALPRO"
    # IB's rate for USD is rounded (0.862069 EUR), so the euros round up to 54,541.
    assert (fields["action"], fields["orderType"], fields["totalQuantity"]) == (
        "SELL",
        "MKT",
        54_541,
    )
    assert ":fx.USD." in fields["orderRef"]
    assert gateway.positions() == {}
    assert gateway.sim.snapshot().cash_balances.get("USD", 0.0) > 62_640

    second = apply_in_process(rules)
    assert second.code == 0, second.out + second.err
    # The conversion's commission took a few euros off NAV: 269 and 134 shares now.
    assert gateway.positions() == {"AAPL": 269.0, "MSFT": 134.0}

    third = apply_in_process(rules)
    assert third.code == 0, third.out + third.err
    assert len(gateway.messages("placeOrder")) == 3, "one conversion, two buys, nothing again"


def three_currency_account() -> SimState:
    """A EUR account (100,000 EUR) and three listings in three currencies: SAP on IBIS (EUR,
    the multi-band rule 1002), SHOP on TSX (CAD) and AAPL (USD). Rates from the pairs: 1.16
    USD and 1.624 CAD a euro."""
    pair: dict[str, Any] = {"symbol": "EUR", "sec_type": "CASH", "min_tick": 0.00005}
    return SimState.from_dict(
        {
            "account": {"id": ACCOUNT, "currency": "EUR", "cash": 100_000},
            "symbols": {
                "SAP.IBIS": {
                    "symbol": "SAP",
                    "price": 205.0,
                    "exchange": "IBIS",
                    "currency": "EUR",
                    "market_rule": 1002,
                    "min_tick": 0.001,
                },
                "SHOP.TSX": {
                    "symbol": "SHOP",
                    "price": 162.4,
                    "exchange": "TSX",
                    "currency": "CAD",
                    "market_rule": 1001,
                },
                "AAPL": {"price": 116.0},
                "EUR.USD": {**pair, "currency": "USD", "price": 1.16},
                "USD.CAD": {**pair, "symbol": "USD", "currency": "CAD", "price": 1.40},
                "EUR.CAD": {**pair, "currency": "CAD", "price": 1.624},
            },
        }
    )


THREE_CURRENCIES: dict[str, Any] = {
    "core": {
        "capital": {"fraction_of_nav": 0.9},
        "drift": {"absolute": 0.01},
        "order": {"type": "limit", "offset_bps": 10},
        "targets": [
            {"symbol": "SAP", "primary_exchange": "IBIS", "currency": "EUR", "weight": 0.3},
            {"symbol": "SHOP", "primary_exchange": "TSX", "currency": "CAD", "weight": 0.3},
            {"symbol": "AAPL", "weight": 0.3},
        ],
    }
}


@pytest.mark.parametrize("fx", ["block", "convert"])
def test_a_eur_account_reaches_a_usd_cad_eur_allocation(
    fx: str,
    gateway_factory: Callable[[SimState], Gateway],
    apply_in_process: Callable[..., Outcome],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    gateway = gateway_factory(three_currency_account())
    rules = write_rules(
        tmp_path / "rules",
        gateway,
        account={"id": ACCOUNT, "fx": fx},
        allocations=THREE_CURRENCIES,
        risk={"max_order_value": 60_000},
    )
    first = apply_in_process(rules)
    assert first.code == 0, first.out + first.err
    # 0.3 of 0.9 of 100,000 EUR = 27,000 EUR a target. SAP at 205 EUR: 131 shares, its BUY
    # limit 205.205 rounded down to the 0.1 band: 205.2, which IB takes.
    placed = [line["fields"] for line in gateway.messages("placeOrder")]
    sap = [fields for fields in placed if fields["contract"]["symbol"] == "SAP"]
    assert [fields["lmtPrice"] for fields in sap] == [205.2]
    assert not off_tick_rejections(first.out)
    if fx == "block":
        # The CAD and USD buys are held with their reason; nothing else is sent.
        assert placed == sap
        code, shown = run_plan(rules, capsys)
        assert code == 2
        for currency in ("CAD", "USD"):
            assert f"account.fx: buys in {currency} would commit {currency}" in shown
        assert gateway.positions() == {"SAP.IBIS": 131.0}
        return
    # Convert: the euros for CAD and USD are sold first (EUR.CAD, EUR.USD), the buys follow.
    conversions = [
        (f["contract"]["symbol"], f["contract"]["currency"], f["action"]) for f in placed
    ]
    assert sorted(conversions) == [
        ("EUR", "CAD", "SELL"),
        ("EUR", "USD", "SELL"),
        ("SAP", "EUR", "BUY"),
    ]
    second = apply_in_process(rules)
    assert second.code == 0, second.out + second.err
    positions = gateway.positions()
    assert positions["SAP.IBIS"] == 131.0
    # 27,000 EUR (a little less: the conversions' commissions) at 100 EUR a share for both.
    assert positions["SHOP.TSX"] == 269.0 and positions["AAPL"] == 269.0
    third = apply_in_process(rules)
    assert third.code == 0, third.out + third.err
    assert len(gateway.messages("placeOrder")) == 5, "two conversions and three buys, once"
