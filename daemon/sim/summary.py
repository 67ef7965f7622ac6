"""reqAccountSummary rows: every tag IB documents, and the ``$LEDGER`` rows per currency.

Each account has Reg T style margin (``matching.leverage``) in its base currency, and
cash per currency: margin figures come from the gross position value, and
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


def _rate(value: float) -> str:
    """IB writes the base currency's own rate as 1.00, others to seven or eight digits."""
    return "1.00" if value == 1.0 else f"{value:.8g}"


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


# The ledger tags in IB's order; the sim holds none of the instruments the zero rows
# stand for.
LEDGER_TAGS = (
    "Currency",
    "CashBalance",
    "TotalCashBalance",
    "AccruedCash",
    "StockMarketValue",
    "OptionMarketValue",
    "FutureOptionValue",
    "FuturesPNL",
    "NetLiquidationByCurrency",
    "UnrealizedPnL",
    "RealizedPnL",
    "ExchangeRate",
    "FundValue",
    "NetDividend",
    "MutualFundValue",
    "MoneyMarketFundValue",
    "CorporateBondValue",
    "TBondValue",
    "TBillValue",
    "WarrantValue",
    "FxCashBalance",
    "IssuerOptionValue",
    "RealCurrency",
)


def _ledger(account: Account, currency: str) -> list[Row]:
    """One currency's ledger rows; ``BASE``: every currency's, converted into the base."""
    values = account.base_ledger() if currency == BASE else account.ledger(currency)
    real = account.currency if currency == BASE else currency
    rows: list[Row] = []
    for tag in LEDGER_TAGS:
        if tag in ("Currency", "RealCurrency"):
            text = real
        elif tag == "ExchangeRate":
            text = _rate(values[tag])
        else:
            text = _money(values.get(tag, 0.0))
        rows.append((tag, text, currency))
    return rows


# Account values that reqAccountUpdates sends per currency and as BASE instead of in the
# base currency alone, and the ledger rows it sends per currency.
PER_CURRENCY_VALUES = ("CashBalance", "UnrealizedPnL", "RealizedPnL")
ACCOUNT_LEDGER_TAGS = frozenset(
    {
        "CashBalance",
        "TotalCashBalance",
        "StockMarketValue",
        "NetLiquidationByCurrency",
        "UnrealizedPnL",
        "RealizedPnL",
        "ExchangeRate",
    }
)


def account_value_rows(account: Account) -> list[Row]:
    """reqAccountUpdates' account values: the totals in the base currency, then the ledger
    of every currency the account holds and the ``BASE`` ledger, as IB sends them."""
    rows = [
        (tag, _money(value), account.currency)
        for tag, value in account.values().items()
        if tag not in PER_CURRENCY_VALUES
    ]
    for currency in [*account.currencies(), BASE]:
        rows += [
            (tag, value, ccy)
            for tag, value, ccy in _ledger(account, currency)
            if tag in ACCOUNT_LEDGER_TAGS
        ]
    return rows


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
            for currency in [*account.currencies(), BASE]:
                rows += _ledger(account, currency)
        elif tag.startswith("$LEDGER:") and tag.removeprefix("$LEDGER:") in account.currencies():
            rows += _ledger(account, tag.removeprefix("$LEDGER:"))
    return rows
