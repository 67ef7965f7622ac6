"""reqAccountSummary rows: every tag IB documents, and the ``$LEDGER`` rows per currency.

The sim's account is a cash account in one currency with Reg T style margin
(``matching.leverage``): margin figures come from the gross position value, and
the look-ahead and "Full" variants equal the current ones because nothing
changes at the next margin cycle.
"""

from __future__ import annotations

from tradectl.sim.account import Account

DAY_TRADES_TAGS = tuple(
    f"DayTradesRemaining{suffix}" for suffix in ("", "T+1", "T+2", "T+3", "T+4")
)
# IB's tags for reqAccountSummary (EClient.reqAccountSummary documentation), in its order.
SUMMARY_TAGS = (
    "AccountType",
    "NetLiquidation",
    "TotalCashValue",
    "SettledCash",
    "AccruedCash",
    "BuyingPower",
    "EquityWithLoanValue",
    "PreviousDayEquityWithLoanValue",
    "GrossPositionValue",
    "RegTEquity",
    "RegTMargin",
    "SMA",
    "InitMarginReq",
    "MaintMarginReq",
    "AvailableFunds",
    "ExcessLiquidity",
    "Cushion",
    "FullInitMarginReq",
    "FullMaintMarginReq",
    "FullAvailableFunds",
    "FullExcessLiquidity",
    "LookAheadNextChange",
    "LookAheadInitMarginReq",
    "LookAheadMaintMarginReq",
    "LookAheadAvailableFunds",
    "LookAheadExcessLiquidity",
    "HighestSeverity",
    *DAY_TRADES_TAGS,
    "Leverage",
)
# Tags whose value carries no currency (a ratio, a count or a code).
PLAIN_TAGS = frozenset(
    {
        "AccountType",
        "Cushion",
        "LookAheadNextChange",
        "HighestSeverity",
        *DAY_TRADES_TAGS,
        "Leverage",
    }
)
BASE = "BASE"

Row = tuple[str, str, str]  # tag, value, currency


def _money(value: float) -> str:
    return f"{value:.2f}"


def _summary_values(account: Account) -> dict[str, str]:
    values = account.values()
    nav = values["NetLiquidation"]
    gpv = values["GrossPositionValue"]
    init = values["InitMarginReq"]
    maint = values["MaintMarginReq"]
    available = values["AvailableFunds"]
    excess = values["ExcessLiquidity"]
    reg_t_margin = gpv / 2
    out = {
        "AccountType": "INDIVIDUAL",
        "NetLiquidation": _money(nav),
        "TotalCashValue": _money(account.cash),
        "SettledCash": _money(account.cash),
        "AccruedCash": _money(0.0),
        "BuyingPower": _money(values["BuyingPower"]),
        "EquityWithLoanValue": _money(nav),
        "PreviousDayEquityWithLoanValue": _money(account.previous_day_equity),
        "GrossPositionValue": _money(gpv),
        "RegTEquity": _money(nav),
        "RegTMargin": _money(reg_t_margin),
        "SMA": _money(max(0.0, nav - reg_t_margin)),
        "Cushion": f"{excess / nav:.6f}" if nav else "0",
        "LookAheadNextChange": "0",
        "HighestSeverity": "0",
        "Leverage": f"{gpv / nav:.4f}" if nav else "0",
    }
    for prefix in ("", "Full", "LookAhead"):
        out[f"{prefix}InitMarginReq"] = _money(init)
        out[f"{prefix}MaintMarginReq"] = _money(maint)
        out[f"{prefix}AvailableFunds"] = _money(available)
        out[f"{prefix}ExcessLiquidity"] = _money(excess)
    # -1: no pattern-day-trader limit, as IB reports for accounts above 25,000 USD
    for tag in DAY_TRADES_TAGS:
        out[tag] = "-1"
    return out


def _ledger(account: Account, currency: str) -> list[Row]:
    values = account.values()
    stock_value = sum(account.market_value(symbol) for symbol in account.positions)
    cash = _money(account.cash)
    rows = {
        "Currency": account.currency,
        "CashBalance": cash,
        "TotalCashBalance": cash,
        "AccruedCash": _money(0.0),
        "StockMarketValue": _money(stock_value),
        "OptionMarketValue": _money(0.0),
        "FutureOptionValue": _money(0.0),
        "FuturesPNL": _money(0.0),
        "NetLiquidationByCurrency": _money(values["NetLiquidation"]),
        "UnrealizedPnL": _money(values["UnrealizedPnL"]),
        "RealizedPnL": _money(values["RealizedPnL"]),
        "ExchangeRate": "1.00",
        "FundValue": _money(0.0),
        "NetDividend": _money(0.0),
        "MutualFundValue": _money(0.0),
        "MoneyMarketFundValue": _money(0.0),
        "CorporateBondValue": _money(0.0),
        "TBondValue": _money(0.0),
        "TBillValue": _money(0.0),
        "WarrantValue": _money(0.0),
        "FxCashBalance": _money(0.0),
        "IssuerOptionValue": _money(0.0),
        "RealCurrency": account.currency,
    }
    return [(tag, value, currency) for tag, value in rows.items()]


def summary_rows(account: Account, tags: str) -> list[Row]:
    """The rows IB sends for a reqAccountSummary ``tags`` list, in request order.

    ``$LEDGER`` gives the ledger in the base currency (labelled ``BASE``),
    ``$LEDGER:ALL`` every currency the account holds and then ``BASE``,
    ``$LEDGER:<CCY>`` that currency only; unknown tags are skipped, as at IB.
    """
    values = _summary_values(account)
    rows: list[Row] = []
    for tag in (t.strip() for t in tags.split(",")):
        if tag in SUMMARY_TAGS:
            currency = "" if tag in PLAIN_TAGS else account.currency
            rows.append((tag, values[tag], currency))
        elif tag == "$LEDGER":
            rows += _ledger(account, BASE)
        elif tag == "$LEDGER:ALL":
            rows += _ledger(account, account.currency) + _ledger(account, BASE)
        elif tag.startswith("$LEDGER:") and tag.removeprefix("$LEDGER:") == account.currency:
            rows += _ledger(account, account.currency)
    return rows
