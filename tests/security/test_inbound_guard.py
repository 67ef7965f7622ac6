"""The inbound guard on an ib_insync client, fed bytes directly: undecodable messages end the
connection and nothing after them is decoded; listing ends nobody asked for are ignored."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator

import pytest
from ib_insync import IB

from tradectl.ib.inbound_guard import InboundGuard
from tradectl.sim.faults import malformed_frames
from tradectl.sim.protocol import Out, encode_message

OPEN_ORDER_END = encode_message([Out.OPEN_ORDER_END, 1])
ORDER_STATUS = encode_message(
    [Out.ORDER_STATUS, 5, "Submitted", 0.0, 10.0, 0.0, 1, 0, 0.0, 17, "", 0.0]
)


@pytest.fixture
def ib() -> Iterator[IB]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ib = IB()
    # As after the handshake: every message goes through the decoder.
    ib.client._serverVersion = 176
    ib.client.decoder.serverVersion = 176
    ib.client._apiReady = True
    yield ib
    loop.close()


def receive(ib: IB, data: bytes) -> None:
    ib.client.conn.hasData.emit(data)


def test_a_listing_end_counts_only_when_it_was_asked_for(ib: IB) -> None:
    guard = InboundGuard(ib.client)
    ends: list[None] = []
    ib.wrapper.openOrderEnd = lambda: ends.append(None)  # type: ignore[method-assign]
    receive(ib, OPEN_ORDER_END)
    assert ends == []
    ib.client.conn.sendMsg(struct.pack(">I", 5) + b"16\x001\x00")  # reqAllOpenOrders
    receive(ib, OPEN_ORDER_END + OPEN_ORDER_END)
    assert ends == [None]
    assert guard.faults == 0


@pytest.mark.parametrize(
    "kind", ["garbled_fields", "truncated", "bad_id", "non_utf8", "oversized_field"]
)
def test_an_undecodable_message_ends_the_connection_and_what_follows_is_dropped(
    ib: IB, kind: str
) -> None:
    faults: list[str] = []
    guard = InboundGuard(ib.client, faults.append)
    statuses: list[int] = []
    ib.wrapper.orderStatus = lambda order_id, *_: statuses.append(order_id)  # type: ignore[method-assign]
    after = encode_message(
        [Out.ORDER_STATUS, 5, "Submitted", 0.0, 10.0, 0.0, 1, 0, 0.0, 17, "", 0.0]
    )
    receive(ib, b"".join(malformed_frames(kind)) + after)
    assert guard.faults == 1
    assert len(faults) == 1
    assert statuses == []
    assert ib.client._data == b""


def test_an_oversized_frame_is_refused_before_it_is_buffered(ib: IB) -> None:
    guard = InboundGuard(ib.client)
    [frame] = malformed_frames("oversized_frame")
    receive(ib, frame[:65536])
    assert guard.faults == 1
    receive(ib, frame[65536 : 2 * 65536])
    assert ib.client._data == b""
