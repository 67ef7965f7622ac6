"""Fault settings the sessions consult while handling messages.

Faults that are one-off actions (dropping or refusing connections, rejecting
orders, connectivity notices) are methods of :class:`~tradectl.sim.control.SimControl`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from tradectl.sim.protocol import Field, Out, encode_message, frame

# The messages ``drop_next`` can swallow, by name: the streams a client keeps its state from.
DROPPABLE: dict[str, int] = {"orderStatus": Out.ORDER_STATUS, "execDetails": Out.EXECUTION_DATA}


@dataclass
class Faults:
    # delay before an order message (placeOrder, cancelOrder, reqGlobalCancel) is handled
    ack_delay_ms: float = 0.0
    # How many of the next messages of each id (``DROPPABLE``) are lost on their way to a client.
    drop_next: dict[int, int] = field(default_factory=dict)
    # How many of the next client messages of each name (placeOrder, ...) are dropped with error
    # 100, as if over the pacing limit, whatever the rate.
    pace_out_next: dict[str, int] = field(default_factory=dict)

    def paces_out(self, name: str) -> bool:
        """Whether the client message just read is dropped with error 100 (``pace_out_next``)."""
        left = self.pace_out_next.get(name, 0)
        if left <= 0:
            return False
        self.pace_out_next[name] = left - 1
        return True

    def swallows(self, message_id: Field) -> bool:
        """Whether the message about to be written is lost instead (``drop_next``)."""
        if not isinstance(message_id, int):
            return False
        left = self.drop_next.get(message_id, 0)
        if left <= 0:
            return False
        self.drop_next[message_id] = left - 1
        return True


# What a broken or hostile gateway can put on the wire (docs/sim.md, docs/security.md): each
# kind is a list of frames the sim writes to every client as they are. Message layouts follow
# ib_insync's decoder (client.py, decoder.py), the ground truth for the protocol.
_UNKNOWN_ORDER_ID = 999_001
_MEGABYTE = 1024 * 1024


def _garbled_fields() -> list[bytes]:
    # orderStatus whose filled quantity is not a number
    fields: list[Field] = [Out.ORDER_STATUS, _UNKNOWN_ORDER_ID, "Filled", "lots", 0.0, 1.0]
    return [encode_message([*fields, 0, 0, 1.0, 17, "", 0.0])]


def _truncated() -> list[bytes]:
    # openOrder cut off after the contract id
    return [encode_message([Out.OPEN_ORDER, _UNKNOWN_ORDER_ID, 265598])]


def _bad_id() -> list[bytes]:
    return [encode_message(["not-a-message-id", 1, 2])]


def _non_utf8() -> list[bytes]:
    return [frame(b"\xff\xfe\xfd\x00\xc3\x28\x00")]


def _unknown_message() -> list[bytes]:
    return [encode_message([9999, 1, "from a newer gateway"])]


def _oversized_field() -> list[bytes]:
    return [encode_message([Out.ERROR, 2, -1, 2104, "A" * _MEGABYTE])]


def _oversized_frame() -> list[bytes]:
    # announces 1 GiB and sends 4 MiB of it: a client that trusts the header buffers forever
    return [struct.pack(">I", 1 << 30) + b"\0" * (4 * _MEGABYTE)]


def _out_of_order() -> list[bytes]:
    # well-formed messages out of any context: a status and a commission for orders and
    # executions nobody has, ends of requests never made, a next order id that went backwards
    return [
        encode_message(
            [Out.ORDER_STATUS, _UNKNOWN_ORDER_ID, "Filled", 10.0, 0.0, 1.0, 0, 0, 1.0, 17, "", 0.0]
        ),
        encode_message(
            [Out.COMMISSION_REPORT, 1, "0000ffff.deadbeef.01.01", 1.0, "USD", "", "", ""]
        ),
        encode_message([Out.OPEN_ORDER_END, 1]),
        encode_message([Out.EXECUTION_DATA_END, 1, 4242]),
        encode_message([Out.NEXT_VALID_ID, 1, 1]),
    ]


MALFORMED: dict[str, Callable[[], list[bytes]]] = {
    "garbled_fields": _garbled_fields,
    "truncated": _truncated,
    "bad_id": _bad_id,
    "non_utf8": _non_utf8,
    "unknown_message": _unknown_message,
    "oversized_field": _oversized_field,
    "oversized_frame": _oversized_frame,
    "out_of_order": _out_of_order,
}


def malformed_frames(kind: str) -> list[bytes]:
    builder = MALFORMED.get(kind)
    if builder is None:
        raise ValueError(f"unknown malformed kind {kind!r} (one of {', '.join(sorted(MALFORMED))})")
    return builder()
