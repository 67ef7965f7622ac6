"""What one pass costs on the wire: every message counts against IB's 50 per second."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import Gateway, Outcome, write_rules

pytestmark = pytest.mark.e2e


def test_a_pass_reads_open_orders_and_executions_once(
    gateway: Gateway, apply_in_process: Callable[..., Outcome], tmp_path: Path
) -> None:
    rules = write_rules(
        tmp_path / "rules",
        gateway,
        allocations={
            "core": {
                "capital": {"amount": 20_000},
                "drift": {"absolute": 0.01},
                "targets": {"AAPL": 0.3, "MSFT": 0.3},
            }
        },
    )
    outcome = apply_in_process(rules)
    assert outcome.code == 0, outcome.out + outcome.err
    # The plan was sent whole (nothing sliced or held for fills): no second pass is needed.
    assert "Converged after 1 pass, 2 order action(s) sent" in outcome.out
    passes = 1
    sent = Counter(message["msg"] for message in gateway.messages())
    assert sent["placeOrder"] == 2
    # The resync that starts each pass reads them; observing right after it reuses that read.
    assert sent["reqAllOpenOrders"] == passes
    # One more reqExecutions is ib_insync's own start-up request.
    assert sent["reqExecutions"] == 1 + passes
    assert sent["reqCompletedOrders"] == 1 + passes
