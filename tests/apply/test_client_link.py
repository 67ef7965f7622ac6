"""The link an early connection hands over (``tradectl.ib.link``): what the wrapper heard before
the adapter attached its observers reaches them afterwards, whole and in order."""

from __future__ import annotations

from typing import Any

import pytest

from tradectl.ib.link import TAPPED_CALLS, ClientLink
from tradectl.ib.pacer import DEFAULT_BURST, DEFAULT_RATE


def link() -> ClientLink:
    return ClientLink(pacing_rate=DEFAULT_RATE, pacing_burst=DEFAULT_BURST, request_timeout=5.0)


def test_calls_heard_before_the_observers_attach_are_replayed_in_order_then_passed_on() -> None:
    client = link()
    wrapper = client.ib.wrapper
    wrapper.error(-1, 2104, "Market data farm connection is OK:usfarm", "")
    wrapper.commissionReport(_Report("0001"))
    wrapper.error(-1, 2106, "HMDS data farm connection is OK", "")
    assert client.recorded == 3
    heard: list[tuple[str, Any]] = []
    observers = {
        name: (lambda *args, name=name: heard.append((name, args[1] if name == "error" else args)))
        for name in TAPPED_CALLS
    }
    client.attach(observers)
    assert [name for name, _ in heard] == ["error", "commissionReport", "error"]
    assert [args for name, args in heard if name == "error"] == [2104, 2106]
    assert client.recorded == 0
    wrapper.error(-1, 2158, "Sec-def data farm connection is OK", "")
    assert heard[-1] == ("error", 2158)


def test_every_tapped_call_needs_an_observer() -> None:
    with pytest.raises(ValueError, match="tickString"):
        link().attach({name: print for name in TAPPED_CALLS if name != "tickString"})


class _Report:
    def __init__(self, exec_id: str) -> None:
        self.execId = exec_id
        self.commission = 1.0
        self.currency = "USD"
        self.realizedPNL = 0.0
        self.yield_ = 0.0
        self.yieldRedemptionDate = 0


def test_the_link_stops_writing_at_ib_1100_even_before_the_observers_attach() -> None:
    client = link()
    client.ib.wrapper.error(-1, 1100, "Connectivity between IB and TWS has been lost.", "")
    assert client.link_up is False
    client.ib.wrapper.error(-1, 1102, "Connectivity restored - data maintained.", "")
    assert client.link_up is True
    assert client.recorded == 2
