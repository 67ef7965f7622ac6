"""Realized P&L, FIFO per symbol, against a table computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tradectl.report.pnl import Fill, realize

T0 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def fill(
    minute: int, symbol: str, side: str, shares: float, price: float, commission: float
) -> Fill:
    return Fill(
        exec_id=f"e{minute}",
        time=T0 + timedelta(minutes=minute),
        symbol=symbol,
        side=side,
        shares=shares,
        price=price,
        commission=commission,
        rule="core",
    )


# Hand-computed (cost per share includes the buy's commission; proceeds per share are net of
# the sell's commission):
#
# | # | fill                           | lots after               | realized                    |
# |---|--------------------------------|--------------------------|-----------------------------|
# | 1 | BUY 100 AAPL @ 10.00, fee 1.00 | 100 @ 10.01              |                             |
# | 2 | BUY  50 AAPL @ 12.00, fee 0.50 | 100 @ 10.01, 50 @ 12.01  |                             |
# | 3 | BUY  10 MSFT @ 50.00, fee 1.00 | MSFT 10 @ 50.10          |                             |
# | 4 | SELL 120 AAPL @ 13.00, fee 1.20| 30 @ 12.01 (partial)     | 100 x (12.99 - 10.01) 298.00|
# |   |                                |                          | + 20 x (12.99 - 12.01) 19.60|
# |   |                                |                          | = 317.60                    |
# | 5 | SELL   4 MSFT @ 49.00, fee 1.00| MSFT 6 @ 50.10           | 4 x (48.75 - 50.10) = -5.40 |
# | 6 | SELL  30 AAPL @ 11.00, fee 0.30| none                     | 30 x (10.99 - 12.01) -30.60 |
# | 7 | SELL   5 AAPL @ 11.00, fee 1.00| none                     | unmatched 5: none           |
#
# AAPL total: 317.60 - 30.60 = 287.00 = (1,560 + 330) - (1,000 + 600) - 3.00 in fees.
TABLE = [
    (fill(1, "AAPL", "BUY", 100, 10.00, 1.00), None, 0),
    (fill(2, "AAPL", "BUY", 50, 12.00, 0.50), None, 0),
    (fill(3, "MSFT", "BUY", 10, 50.00, 1.00), None, 0),
    (fill(4, "AAPL", "SELL", 120, 13.00, 1.20), 317.60, 0),
    (fill(5, "MSFT", "SELL", 4, 49.00, 1.00), -5.40, 0),
    (fill(6, "AAPL", "SELL", 30, 11.00, 0.30), -30.60, 0),
    (fill(7, "AAPL", "SELL", 5, 11.00, 1.00), 0.0, 5),
]


def test_realized_pnl_matches_the_hand_computed_table() -> None:
    # Given out of order: realization follows time.
    results = realize([row[0] for row in reversed(TABLE)])

    assert [r.fill.exec_id for r in results] == [row[0].exec_id for row in TABLE]
    for result, (_, realized, unmatched) in zip(results, TABLE, strict=True):
        if realized is None:
            assert result.realized is None
        else:
            assert result.realized == pytest.approx(realized, abs=1e-9)
        assert result.unmatched == unmatched
    aapl = sum(r.realized or 0.0 for r in results if r.fill.symbol == "AAPL")
    assert aapl == pytest.approx(287.00, abs=1e-9)


def test_a_missing_commission_counts_as_zero() -> None:
    buy = fill(1, "SPY", "BUY", 10, 100.0, 0.0)
    sell = Fill("e2", T0 + timedelta(minutes=2), "SPY", "SELL", 10, 101.0, None, "core")

    assert realize([buy, sell])[1].realized == pytest.approx(10.0)
