"""A malformed gateway cannot kill the daemon or trick it: the guard on every inbound message.

ib_insync decodes what the gateway sends with few checks: a message it cannot decode is logged
with all its fields (a 50 MB field makes a 50 MB log line) and dropped, so the daemon's view of
orders and positions silently misses it; a frame header announcing 2 GB makes it buffer
everything that follows, forever. The guard sits between the socket and ib_insync's decoder:

* a frame longer than ``MAX_FRAME_BYTES`` or a field longer than ``MAX_FIELD_CHARS`` (nothing
  tradectl asks for comes close), a message id that is not a number, or a known message that
  fails to decode is a *fault*: the guard drops everything after it and closes the connection.
  The daemon then reconnects and resyncs open orders, executions and positions from scratch
  before it plans anything, as after any dropped connection: no order is ever sent on the
  strength of a half-read state. Memory stays bounded by ``MAX_FRAME_BYTES``.
* a message id ib_insync does not know (a newer gateway) is ignored and logged once per id.
* the end of a listing (open orders, completed orders) that nobody asked for is ignored: taken
  as the answer to the next request, it would cut that listing short, and orders missing from
  it would look cancelled. (An end that arrives while a request is outstanding cannot be told
  from the real one; the protocol carries no request id for these listings.)

See docs/security.md.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger("tradectl.gateway")

MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_FIELD_CHARS = 64 * 1024
MAX_REMEMBERED_UNKNOWN_IDS = 64
_HEADER = struct.Struct(">I")
# Listing requests without a request id, by outgoing message id, and the end message that
# answers each (ib_insync's client.py and decoder.py).
_LISTING_REQUESTS = {5: "open orders", 16: "open orders", 99: "completed orders"}
_LISTING_ENDS = {53: "open orders", 102: "completed orders"}


def oversized_frame(buffered: bytes) -> int | None:
    """The announced length of the first frame in ``buffered`` that exceeds MAX_FRAME_BYTES."""
    offset = 0
    while offset + _HEADER.size <= len(buffered):
        (size,) = _HEADER.unpack_from(buffered, offset)
        if size > MAX_FRAME_BYTES:
            return int(size)
        offset += _HEADER.size + size
    return None


class InboundGuard:
    """Installed on one ib_insync ``Client``; ``faults`` counts the connections it ended."""

    def __init__(self, client: Any, on_fault: Callable[[str], None] | None = None) -> None:
        self._client = client
        self._on_fault = on_fault
        self._tripped = False
        self._unknown_ids: set[int] = set()
        self._outstanding: dict[str, int] = {}
        self.faults = 0
        self._failure: str | None = None
        client.decoder.interpret = self._interpret
        # ib_insync's generated handlers catch their own decoding errors and only log them:
        # the guard listens to that log to learn that a message was lost.
        client.decoder.logger = _FailureListener(client.decoder.logger, self._decode_failed)
        client.conn.hasData -= client._onSocketHasData
        client.conn.hasData += self._on_data
        client.conn.disconnected += self._on_disconnected
        self._write = client.conn.sendMsg
        client.conn.sendMsg = self._on_write

    def _on_disconnected(self, _message: str) -> None:
        self._tripped = False
        self._outstanding.clear()

    def _on_write(self, message: bytes) -> None:
        head = message[_HEADER.size : _HEADER.size + 4].split(b"\0", 1)[0]
        listing = _LISTING_REQUESTS.get(int(head)) if head.isdigit() else None
        if listing is not None:
            self._outstanding[listing] = self._outstanding.get(listing, 0) + 1
        self._write(message)

    def _unsolicited_end(self, message_id: int) -> bool:
        listing = _LISTING_ENDS.get(message_id)
        if listing is None:
            return False
        if self._outstanding.get(listing, 0) == 0:
            log.warning("gateway ended a listing of %s nobody asked for: ignored", listing)
            return True
        self._outstanding[listing] -= 1
        return False

    def _on_data(self, data: bytes) -> None:
        if self._tripped:
            return
        buffered = self._client._data
        size = oversized_frame(buffered + data if buffered else data)
        if size is not None:
            self._fault(f"a frame of {size} bytes (the limit is {MAX_FRAME_BYTES})")
            return
        try:
            self._client._onSocketHasData(data)
        except Exception as exc:
            # Before the API is ready ib_insync reads some messages itself, unguarded.
            self._fault(f"an undecodable message during the handshake ({type(exc).__name__})")

    def _interpret(self, fields: list[str]) -> None:
        if self._tripped:
            return
        longest = max((len(field) for field in fields), default=0)
        if longest > MAX_FIELD_CHARS:
            self._fault(f"a field of {longest} characters (the limit is {MAX_FIELD_CHARS})")
            return
        try:
            message_id = int(fields[0])
        except (ValueError, IndexError):
            self._fault(f"a message whose id is not a number ({_preview(fields)})")
            return
        if self._unsolicited_end(message_id):
            return
        handler = self._client.decoder.handlers.get(message_id)
        if handler is None:
            if (
                message_id not in self._unknown_ids
                and len(self._unknown_ids) < MAX_REMEMBERED_UNKNOWN_IDS
            ):
                self._unknown_ids.add(message_id)
                log.warning(
                    "gateway sent message id %d, unknown to this client: ignored", message_id
                )
            return
        self._failure = None
        try:
            handler(fields)
        except Exception as exc:
            self._failure = f"{type(exc).__name__}: {str(exc)[:120]}"
        if self._failure is not None:
            self._fault(
                f"message id {message_id} that does not decode ({self._failure}; "
                f"{_preview(fields)})"
            )

    def _decode_failed(self, description: str) -> None:
        self._failure = description

    def _fault(self, what: str) -> None:
        self._tripped = True
        self.faults += 1
        self._client._data = b""
        log.error(
            "the gateway sent %s: dropping the connection; the daemon reconnects and resyncs "
            "orders and positions before it plans anything",
            what,
        )
        if self._on_fault is not None:
            self._on_fault(what)
        # Not from inside the decoder's loop: close once this batch of data is done with.
        asyncio.get_event_loop().call_soon(self._client.conn.disconnect)


class _FailureListener:
    """Stands in for the decoder's logger: ``exception`` reports the error being handled."""

    def __init__(self, logger: logging.Logger, report: Callable[[str], None]) -> None:
        self._logger = logger
        self._report = report

    def exception(self, message: str, *args: object, **kwargs: object) -> None:
        error = sys.exc_info()[1]
        what = type(error).__name__ if error is not None else "error"
        self._report(f"{what}: {str(error)[:120]} in {str(message)[:60]}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


def _preview(fields: list[str]) -> str:
    shown = ", ".join(field[:24] for field in fields[:6])
    return f"{len(fields)} fields: {shown}"
