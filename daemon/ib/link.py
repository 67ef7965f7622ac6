"""One ib_insync connection with everything tradectl installs on it before IB's handshake: the
paced ``sendMsg`` and its pump, ib_insync's own throttle off, the request timeout, the inbound
guard, and the taps on the wrapper calls the adapter observes.

The adapter (``tradectl.ib.adapter``) normally creates its link and connects it itself. ``tradectl
apply`` may also connect a link before its rules are validated (``tradectl.ib.early``) and hand
it to the adapter afterwards: the handshake's messages then went through the same token bucket
the adapter goes on using, and the wrapper calls tapped during the handshake were recorded in
order and are replayed to the adapter's observers when it attaches them (``attach``), after the
runtime's tracker listens. Replaying later is equivalent to observing at once because every
observer runs before ib_insync's own handling and reads only the adapter's state, never what
ib_insync did with the call (docs/apply.md, "Start and exit").

This module imports no planner, journal or rule model, so that the early connection can start
while they load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ib_insync import IB, Client

from tradectl.ib.inbound_guard import InboundGuard
from tradectl.ib.pacer import Pacer
from tradectl.ib_codes import LINK_LOST, LINK_RESTORED_CODES
from tradectl.message_priority import Priority

# The wrapper calls the adapter observes, each before ib_insync handles it.
TAPPED_CALLS = (
    "openOrder",
    "orderStatus",
    "completedOrder",
    "execDetails",
    "commissionReport",
    "error",
    "tickString",
)

Observer = Callable[..., None]

# A request the gateway never answers fails after this long (``ConnectionSettings``).
REQUEST_TIMEOUT = 60.0


@dataclass
class _Outgoing:
    message: str
    before_write: Callable[[], None] | None
    after_write: Callable[[], None] | None


class ClientLink:
    def __init__(self, *, pacing_rate: float, pacing_burst: float, request_timeout: float) -> None:
        self.ib = IB()
        self.ib.RequestTimeout = request_timeout
        _retrieve_failures_of_abandoned_requests(self.ib.wrapper)
        self.pacer: Pacer[_Outgoing] = Pacer(pacing_rate, pacing_burst)
        # Every message written to the socket, for the metrics' messages per second.
        self.messages_sent = 0
        # False between IB's 1100 and its 1101/1102: nothing is written meanwhile.
        self.link_up = True
        self._pump_scheduled = False
        self._priority = Priority.REQUEST
        self._before_write: Callable[[], None] | None = None
        self._after_write: Callable[[], None] | None = None
        # The tapped calls heard before the observers were attached, in order; None once they are.
        self._recorded: list[tuple[str, tuple[Any, ...]]] | None = []
        self._observers: dict[str, Observer] = {}
        client = self.ib.client
        self.inbound_guard = InboundGuard(client)
        client.MaxRequests = 0
        client.sendMsg = self._paced_send  # type: ignore[method-assign,assignment]
        wrapper = self.ib.wrapper
        for name in TAPPED_CALLS:
            setattr(wrapper, name, _tapped(getattr(wrapper, name), self._observer_of(name)))

    def open(
        self, host: str, port: int, client_id: int, account: str, timeout: float, readonly: bool
    ) -> None:
        """Connect and run IB's handshake (ib_insync's ``IB.connect``), paced and tapped."""
        self.ib.connect(
            host,
            port,
            clientId=client_id,
            timeout=timeout,
            readonly=readonly,
            account=account,
        )

    @property
    def attached(self) -> bool:
        return self._recorded is None

    @property
    def recorded(self) -> int:
        """Tapped calls waiting for the observers (heard during an early handshake)."""
        return len(self._recorded or ())

    def attach(self, observers: Mapping[str, Observer]) -> None:
        """From now on every tapped call goes to ``observers`` (one per name in TAPPED_CALLS);
        the calls recorded before are handed to them first, in the order they arrived."""
        missing = set(TAPPED_CALLS) - set(observers)
        if missing:
            raise ValueError(f"no observer for {', '.join(sorted(missing))}")
        self._observers = dict(observers)
        recorded, self._recorded = self._recorded or [], None
        for name, args in recorded:
            self._observers[name](*args)

    def _observer_of(self, name: str) -> Observer:
        def observe(*args: Any) -> None:
            if name == "error":
                self._follow_link(args[1])
            if self._recorded is not None:
                self._recorded.append((name, args))
                return
            self._observers[name](*args)

        return observe

    def _follow_link(self, code: int) -> None:
        """Nothing is written between IB's 1100 and its 1101/1102, during an early handshake
        too: the link follows them itself, before any observer hears of them."""
        if code == LINK_LOST:
            self.link_up = False
        elif code in LINK_RESTORED_CODES:
            self.link_up = True
            self.pump()

    # --- pacing ------------------------------------------------------------------------------

    @contextmanager
    def sending(
        self,
        priority: Priority,
        before_write: Callable[[], None] | None = None,
        after_write: Callable[[], None] | None = None,
    ) -> Iterator[None]:
        """Messages written inside go at ``priority``; the next one runs ``before_write`` and
        ``after_write`` around its write to the socket."""
        self._priority = priority
        self._before_write, self._after_write = before_write, after_write
        try:
            yield
        finally:
            self._priority = Priority.REQUEST
            self._before_write = self._after_write = None

    def _paced_send(self, message: str) -> None:
        before_write, self._before_write = self._before_write, None
        after_write, self._after_write = self._after_write, None
        self.pacer.submit(_Outgoing(message, before_write, after_write), self._priority)
        self.pump()

    def _pump_later(self) -> None:
        self._pump_scheduled = False
        self.pump()

    def pump(self) -> None:
        """Write what the bucket allows now; come back when the next message may go."""
        if not self.ib.client.isConnected():
            return
        handshake_done = self.ib.client.isReady()
        if handshake_done and not self.link_up:
            return
        for outgoing in self.pacer.release():
            if outgoing.before_write is not None:
                outgoing.before_write()
            Client.sendMsg(self.ib.client, outgoing.message)
            self.messages_sent += 1
            if outgoing.after_write is not None:
                outgoing.after_write()
        delay = self.pacer.delay()
        if delay is not None and not self._pump_scheduled:
            self._pump_scheduled = True
            asyncio.get_event_loop_policy().get_event_loop().call_later(delay, self._pump_later)


def _tapped(original: Callable[..., Any], observer: Observer) -> Observer:
    def tapped(*args: Any) -> None:
        try:
            observer(*args)
        finally:
            original(*args)

    return tapped


def _retrieve_failures_of_abandoned_requests(wrapper: Any) -> None:
    """When the socket closes, ib_insync fails every request still open with "Socket
    disconnect". A request whose caller had already given up (a timeout) leaves that failure
    unread, and asyncio logs it at ERROR ("Future exception was never retrieved") although
    nothing is wrong: the adapter reports the disconnect itself, once. Read those failures."""
    closed = wrapper.connectionClosed

    def connection_closed() -> None:
        for future in list(wrapper._futures.values()):
            if not future.done():
                future.add_done_callback(_read_failure)
        closed()

    wrapper.connectionClosed = connection_closed


def _read_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
