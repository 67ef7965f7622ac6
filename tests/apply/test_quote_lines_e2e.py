"""Streaming quotes within IB's market-data line limit (tradectl.ib.market_data), against the
sim, which refuses a subscription beyond ``limits.max_market_data_lines`` with error 101."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping

import pytest
from ib_insync import Stock

from tradectl.ib.adapter import ConnectionSettings, IbAdapter
from tradectl.journal import CachedContract
from tradectl.sim import SimState

from .conftest import ACCOUNT, CLIENT_ID, Gateway

pytestmark = pytest.mark.e2e

LINES = 5
# Twelve symbols, more than twice the lines; prices 11, 12, ... so each quote is recognisable.
PRICES = {f"Q{chr(ord('A') + index)}": 11.0 + index for index in range(12)}
RULE_SYMBOLS = sorted(PRICES)[:8]


@pytest.fixture
def limited(gateway_factory: Callable[[SimState], Gateway]) -> Gateway:
    return gateway_factory(
        SimState.from_dict(
            {
                "account": {"id": ACCOUNT, "cash": 1_000_000},
                "symbols": {symbol: {"price": price} for symbol, price in PRICES.items()},
                "limits": {"max_market_data_lines": LINES},
            }
        )
    )


@pytest.fixture
def adapter(limited: Gateway) -> Iterator[IbAdapter]:
    settings = ConnectionSettings(
        "127.0.0.1",
        limited.sim.port,
        CLIENT_ID,
        ACCOUNT,
        False,
        market_data_lines=LINES,
        stream_quotes=True,
    )
    connected = IbAdapter(settings, None)
    errors: list[tuple[int, int]] = []
    connected.ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code))
    connected.connect()
    connected.errors_seen = errors  # type: ignore[attr-defined]
    yield connected
    connected.disconnect()


def peak_streams(gateway: Gateway) -> int:
    """The most streaming subscriptions the client held at once, replayed from the sim's wire
    log (a snapshot request holds no streaming line in the sim)."""
    open_streams: set[int] = set()
    peak = 0
    for line in gateway.messages():
        if line["msg"] == "reqMktData" and not line["fields"]["snapshot"]:
            open_streams.add(line["fields"]["reqId"])
        elif line["msg"] == "cancelMktData":
            open_streams.discard(line["fields"]["reqId"])
        peak = max(peak, len(open_streams))
    return peak


def sim_lines(gateway: Gateway) -> int:
    return gateway.sim.call(gateway.sim.gateway.market_data_lines)


def streaming_requests(gateway: Gateway) -> list[str]:
    return [
        line["fields"]["contract"]["symbol"]
        for line in gateway.messages("reqMktData")
        if not line["fields"]["snapshot"]
    ]


def test_more_symbols_than_lines_stream_up_to_the_limit_and_snapshot_the_rest(
    limited: Gateway, adapter: IbAdapter
) -> None:
    notes: list[str] = []
    contracts = adapter.contracts(sorted(PRICES), notes)
    quotes = adapter.quotes(contracts, notes, preferred=RULE_SYMBOLS)

    assert {symbol: quote.last for symbol, quote in quotes.items()} == PRICES
    assert notes == []
    # One line stays free for the snapshots of the seven symbols that do not stream.
    assert adapter._quote_lines.streaming == frozenset(RULE_SYMBOLS[: LINES - 1])
    assert sim_lines(limited) == LINES - 1
    assert peak_streams(limited) <= LINES
    assert [code for _, code in adapter.errors_seen if code == 101] == []  # type: ignore[attr-defined]

    # A streamed price moves without a new request; the next read sees it.
    requests_before = len(limited.messages("reqMktData"))
    limited.sim.control.set_price("QA", 20.0)
    streamed = {symbol: contracts[symbol] for symbol in RULE_SYMBOLS[: LINES - 1]}
    assert _wait_for_price(adapter, streamed, "QA", 20.0)
    assert len(limited.messages("reqMktData")) == requests_before


def _wait_for_price(
    adapter: IbAdapter, contracts: Mapping[str, CachedContract], symbol: str, price: float
) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if adapter.quotes(contracts, [], preferred=list(contracts))[symbol].last == price:
            return True
        adapter.ib.waitOnUpdate(timeout=0.2)
    return False


def test_subscriptions_for_symbols_no_longer_watched_are_cancelled(
    limited: Gateway, adapter: IbAdapter
) -> None:
    notes: list[str] = []
    contracts = adapter.contracts(sorted(PRICES), notes)
    adapter.quotes(contracts, notes, preferred=RULE_SYMBOLS)
    assert sim_lines(limited) == LINES - 1

    kept = ["QC", "QK"]
    quotes = adapter.quotes({symbol: contracts[symbol] for symbol in kept}, notes, kept)

    assert {symbol: quote.last for symbol, quote in quotes.items()} == {"QC": 13.0, "QK": 21.0}
    assert adapter._quote_lines.streaming == frozenset(kept)
    assert sim_lines(limited) == len(kept)
    # QC kept its subscription; only QK was new.
    assert streaming_requests(limited)[LINES - 1 :] == ["QK"]
    assert peak_streams(limited) <= LINES
    assert notes == []


def test_a_line_taken_by_another_client_is_a_snapshot_not_a_missing_quote(
    limited: Gateway, adapter: IbAdapter
) -> None:
    other = IbAdapter(
        ConnectionSettings("127.0.0.1", limited.sim.port, CLIENT_ID + 1, ACCOUNT, False), None
    )
    other.connect()
    try:
        taken = other.ib.qualifyContracts(Stock("QL", "SMART", "USD"))[0]
        ticker = other.ib.reqMktData(taken, "", False, False)
        deadline = time.monotonic() + 20
        while ticker.last != PRICES["QL"] and time.monotonic() < deadline:
            other.ib.waitOnUpdate(timeout=0.2)
        assert sim_lines(limited) == 1

        notes: list[str] = []
        contracts = adapter.contracts(RULE_SYMBOLS[:LINES], notes)
        quotes = adapter.quotes(contracts, notes, preferred=RULE_SYMBOLS)

        # All five fit the adapter's lines, but the sim has only four free: one is refused
        # with 101, dropped, and read by a snapshot instead.
        assert {symbol: quote.last for symbol, quote in quotes.items()} == {
            symbol: PRICES[symbol] for symbol in RULE_SYMBOLS[:LINES]
        }
        assert [code for _, code in adapter.errors_seen].count(101) == 1  # type: ignore[attr-defined]
        assert len(adapter._quote_lines.streaming) == LINES - 1
        assert sim_lines(limited) == LINES
    finally:
        other.disconnect()


def _pump_until(adapter: IbAdapter, done: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 20
    while not done() and time.monotonic() < deadline:
        adapter.ib.waitOnUpdate(timeout=0.2)
    return done()


def test_streams_lost_with_1101_or_a_reconnect_are_subscribed_again(
    limited: Gateway, adapter: IbAdapter
) -> None:
    notes: list[str] = []
    contracts = adapter.contracts(RULE_SYMBOLS[:3], notes)
    adapter.quotes(contracts, notes, preferred=RULE_SYMBOLS)
    assert streaming_requests(limited) == RULE_SYMBOLS[:3]

    limited.sim.control.connectivity_restored_data_lost()
    assert _pump_until(adapter, lambda: (-1, 1101) in adapter.errors_seen)  # type: ignore[attr-defined]
    assert sim_lines(limited) == 0
    limited.sim.control.set_price("QA", 30.0)
    quotes = adapter.quotes(contracts, notes, preferred=RULE_SYMBOLS)
    assert quotes["QA"].last == 30.0
    assert streaming_requests(limited) == RULE_SYMBOLS[:3] * 2
    assert sim_lines(limited) == 3

    limited.sim.control.drop_connections()
    # ib_insync reports the closed socket by raising from its event loop.
    with contextlib.suppress(ConnectionError):
        _pump_until(adapter, lambda: not adapter.ib.isConnected())
    assert not adapter.ib.isConnected()
    adapter.connect()
    quotes = adapter.quotes(contracts, notes, preferred=RULE_SYMBOLS)
    assert {symbol: quote.last for symbol, quote in quotes.items()} == {
        "QA": 30.0,
        "QB": PRICES["QB"],
        "QC": PRICES["QC"],
    }
    assert streaming_requests(limited) == RULE_SYMBOLS[:3] * 3
    assert sim_lines(limited) == 3
    assert notes == []
    assert 101 not in [code for _, code in adapter.errors_seen]  # type: ignore[attr-defined]


def test_a_one_shot_command_takes_snapshots_within_the_lines_and_holds_none(
    limited: Gateway,
) -> None:
    settings = ConnectionSettings(
        "127.0.0.1", limited.sim.port, CLIENT_ID, ACCOUNT, False, market_data_lines=LINES
    )
    one_shot = IbAdapter(settings, None)
    one_shot.connect()
    try:
        notes: list[str] = []
        contracts = one_shot.contracts(sorted(PRICES), notes)
        quotes = one_shot.quotes(contracts, notes, preferred=RULE_SYMBOLS)
    finally:
        one_shot.disconnect()
    assert {symbol: quote.last for symbol, quote in quotes.items()} == PRICES
    assert streaming_requests(limited) == []
    assert len(limited.messages("reqMktData")) == len(PRICES)
    assert notes == []
