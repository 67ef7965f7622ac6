"""Instruments in the rule language: the shorthand, the full form and their keys."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from rules_fixture import BASE_FILES, write_rule_set

from tradectl.schemas.loader import load_rule_set
from tradectl.schemas.models import InstrumentFields, RuleSet, parse_instrument, rule_generation

FULL_FORMS = """\
version: 1
allocations:
  core:
    capital: {fraction_of_nav: 0.6}
    targets:
      - {symbol: SPY, weight: 0.2}
      - {symbol: SHOP, exchange: SMART, primary_exchange: TSE, currency: CAD, weight: 0.1}
      - {con_id: 756733, weight: 0.1}
      - {symbol: "BRK B", sec_type: STK, weight: 0.1}
"""
FULL_FORM_ENTRIES = (
    BASE_FILES["entries.yaml"]
    .replace("symbol: NVDA", "symbol: {symbol: NVDA, exchange: SMART, currency: USD}")
    .replace("symbol: AMZN", "symbol: {symbol: SAP, exchange: IBIS, currency: EUR}")
)


def _load(tmp_path: Path, files: dict[str, str]) -> RuleSet:
    result = load_rule_set([write_rule_set(tmp_path / "rules", files)])
    assert result.rule_set is not None, "\n".join(str(error) for error in result.errors)
    return result.rule_set


def test_the_full_forms_become_instrument_keys(tmp_path: Path) -> None:
    account = BASE_FILES["account.yaml"].replace(
        "allowed_symbols: [AAPL, MSFT, NVDA, AMZN, SPY, TLT, GLD, QQQ]",
        "allowed_symbols: [SPY, SHOP, 'conid:756733', 'BRK B', NVDA, SAP]",
    )
    rules = _load(
        tmp_path,
        {"account.yaml": account, "core.yaml": FULL_FORMS, "entries.yaml": FULL_FORM_ENTRIES},
    )

    assert rules.allocations["core"].inline_targets == {
        "SPY": 0.2,
        "SHOP@SMART/TSE:CAD": 0.1,
        "conid:756733": 0.1,
        "BRK B": 0.1,
    }
    assert rules.brackets["nvda-dip"].symbol == "NVDA"
    assert rules.scales["amzn-ladder"].symbol == "SAP@IBIS:EUR"


def test_the_full_forms_of_us_stocks_keep_the_shorthand_generations(tmp_path: Path) -> None:
    shorthand = _load(tmp_path / "a", BASE_FILES)
    full = _load(
        tmp_path / "b",
        {
            **BASE_FILES,
            "entries.yaml": BASE_FILES["entries.yaml"].replace(
                "symbol: NVDA", "symbol: {symbol: NVDA, exchange: SMART, currency: USD}"
            ),
            "core.yaml": BASE_FILES["core.yaml"].replace(
                "      SPY: 0.25\n      TLT: 0.25\n      MSFT: 0.2\n",
                "      - {symbol: SPY, weight: 0.25}\n      - {symbol: TLT, weight: 0.25}\n"
                "      - {symbol: MSFT, weight: 0.2}\n",
            ),
        },
    )

    assert rule_generation(full.brackets["nvda-dip"]) == rule_generation(
        shorthand.brackets["nvda-dip"]
    )
    assert full.allocations["core"].inline_targets == shorthand.allocations["core"].inline_targets
    # The list form is another spelling of the mapping: no working order changes.
    assert rule_generation(full.allocations["core"]) == rule_generation(
        shorthand.allocations["core"]
    )


tickers = st.from_regex(r"\A[A-Z][A-Z0-9]{0,9}( [A-Z0-9]{1,3})?\Z")
exchanges = st.sampled_from(["SMART", "TSE", "LSE", "IBIS", "NYSE", "ARCA"])
currencies = st.sampled_from(["USD", "CAD", "GBP", "EUR"])


@given(tickers, exchanges, st.none() | exchanges, currencies)
def test_a_key_names_exactly_the_instrument_it_came_from(
    symbol: str, exchange: str, primary: str | None, currency: str
) -> None:
    fields = InstrumentFields(
        symbol=symbol, exchange=exchange, primary_exchange=primary, currency=currency
    )

    parsed = parse_instrument(fields.key)

    assert (parsed.symbol, parsed.exchange, parsed.primary_exchange, parsed.currency) == (
        symbol,
        exchange,
        primary,
        currency,
    )
    assert InstrumentFields.model_validate({"symbol": symbol}).key == symbol


@given(st.integers(min_value=1, max_value=10**12 - 1))
def test_a_con_id_key_names_that_contract(con_id: int) -> None:
    assert parse_instrument(InstrumentFields(con_id=con_id).key).con_id == con_id
