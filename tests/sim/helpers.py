"""Shared builders for the simulator tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from daemon.sim.protocol import ContractFields, OrderRequest
from daemon.sim.state import SimState


def small_state(**overrides: Any) -> SimState:
    """Two round-priced symbols, 100k cash: easy arithmetic in assertions."""
    data: dict[str, Any] = {
        "account": {"id": "DU0000001", "cash": 100_000},
        "symbols": {
            "AAPL": {"price": 100.0, "con_id": 265598},
            "MSFT": {"price": 200.0, "con_id": 272093},
            "LOT": {"price": 10.0, "lot_size": 100},
        },
    }
    for key, value in overrides.items():
        data[key] = value
    return SimState.from_dict(data)


def order(
    order_id: int,
    action: str = "BUY",
    quantity: float = 10,
    order_type: str = "MKT",
    *,
    symbol: str = "AAPL",
    lmt: float | None = None,
    aux: float | None = None,
    trailing_percent: float | None = None,
    parent_id: int = 0,
    transmit: bool = True,
    oca_group: str = "",
    oca_type: int = 0,
    tif: str = "DAY",
    order_ref: str = "",
) -> OrderRequest:
    return OrderRequest(
        order_id=order_id,
        contract=ContractFields(symbol=symbol, sec_type="STK", exchange="SMART", currency="USD"),
        action=action,
        total_quantity=float(quantity),
        order_type=order_type,
        lmt_price=lmt,
        aux_price=aux,
        tif=tif,
        oca_group=oca_group,
        account="",
        order_ref=order_ref,
        transmit=transmit,
        parent_id=parent_id,
        outside_rth=False,
        oca_type=oca_type,
        trail_stop_price=None,
        trailing_percent=trailing_percent,
    )


def wait_for(
    predicate: Callable[[], bool], pump: Callable[[float], Any], timeout: float = 5.0
) -> None:
    """Pump the client's event loop until ``predicate`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("condition not met within timeout")
        pump(min(remaining, 0.2))
