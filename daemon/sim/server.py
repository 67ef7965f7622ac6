"""The simulated IB Gateway: an asyncio TCP server speaking the TWS API.

In-process use (tests, ``tradectl ... --sim``)::

    from tradectl.sim import SimGateway, SimState

    async with SimGateway(state=SimState.default(), port=0, wire_log=path) as sim:
        ib.connect(sim.host, sim.port, clientId=1)  # any TWS API client
        sim.control.set_price("AAPL", 190.0)         # moves the quote, re-runs matching
        sim.control.drop_connections()
        snap = sim.snapshot()                        # cash, positions, orders, executions

From synchronous code (ib_insync's sync API runs its own event loop), run the
gateway on a background thread::

    with start_sim_thread(state=SimState.default()) as sim:
        ib.connect("127.0.0.1", sim.port, clientId=1)
        sim.control.set_price("AAPL", 190.0)  # marshalled onto the gateway's loop
        sim.snapshot().positions["AAPL"].quantity

:class:`~tradectl.sim.control.SimControl` lists the control methods (prices,
matching steps and faults); ``docs/sim.md`` describes the behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from tradectl.sim import messages as m
from tradectl.sim.clock import SimClock
from tradectl.sim.control import SimControl
from tradectl.sim.engine import Engine
from tradectl.sim.faults import Faults
from tradectl.sim.hours import Boundary, NyseHours, check_supported, market_hours
from tradectl.sim.model import (
    AccountChanged,
    AccountSnapshot,
    ErrorNotice,
    Event,
    HaltChanged,
    OrderChanged,
    OrderFilled,
    QuoteChanged,
)
from tradectl.sim.session import Session
from tradectl.sim.state import SimState
from tradectl.sim.wirelog import WireLog

log = logging.getLogger(__name__)
T = TypeVar("T")
# How often a running clock is checked for a session boundary it has passed.
CLOCK_POLL_SECONDS = 0.5


class SimGateway:
    def __init__(
        self,
        state: SimState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        wire_log: str | Path | None = None,
        seed: int | None = None,
        clock: SimClock | None = None,
        persist: str | Path | None = None,
    ) -> None:
        """``persist``: write the account back to this state file on stop and at each day roll.

        Raises ValueError if the clock lies outside the calendar's years.
        """
        self.state = state if state is not None else SimState.default()
        self.host = host
        self.port = port
        start = self.state.clock.start
        self.clock = (
            clock
            if clock is not None
            else SimClock(
                start.timestamp() if start is not None else None, frozen=self.state.clock.frozen
            )
        )
        self.hours = market_hours(self.state.calendar)
        if isinstance(self.hours, NyseHours):
            check_supported(self.clock.now())
        self.persist_path = Path(persist) if persist is not None else None
        self.engine = Engine(self.state, clock=self.clock.now, hours=self.hours)
        self._processed_until = self.clock.now()
        self.faults = Faults()
        self.control = SimControl(self)
        self.wire_log = WireLog(wire_log) if wire_log is not None else None
        seed = self.state.market.seed if seed is None else seed
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._sessions: set[Session] = set()
        self._clients: dict[int, Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._clock_watch: asyncio.Task[None] | None = None
        self._reopen: asyncio.TimerHandle | None = None
        # A threading.Event so that tests on other threads can wait for a restart.
        self.listening = threading.Event()

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        # restored orders held for a session that is on by now go to work
        self.engine.release_held()
        await self._listen()
        market = self.state.market
        if market.random_walk or self.state.matching.fill_chunk:
            self._ticker = asyncio.create_task(self._tick_forever(market.tick_interval))
        if not self.clock.frozen:
            self._clock_watch = asyncio.create_task(self._follow_clock())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.listening.set()
        log.info("sim gateway listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
        for task in (self._ticker, self._clock_watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.drop_connections()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 2)
        if self.wire_log is not None:
            self.wire_log.close()
        self.save()

    def save(self) -> None:
        """Write the account back to the ``persist`` state file, if there is one.

        A failed write is logged, not raised: the gateway keeps serving.
        """
        if self.persist_path is None:
            return
        try:
            self.engine.export_state().save(self.persist_path)
        except OSError as exc:
            log.error("sim gateway could not write its state to %s: %s", self.persist_path, exc)

    async def __aenter__(self) -> SimGateway:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self._sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _follow_clock(self) -> None:
        while True:
            await asyncio.sleep(CLOCK_POLL_SECONDS)
            self.catch_up()

    # -- market time ------------------------------------------------------------------

    def catch_up(self) -> None:
        """Handle the session boundaries the running clock has passed since the last call, and
        re-send the account summary values whose three minute refresh is due."""
        now = self.clock.now()
        for ts, boundary in self.hours.boundaries(self._processed_until, now):
            self._processed_until = ts
            self.publish(self._cross(boundary))
        self._processed_until = max(self._processed_until, now)
        self._refresh_summaries()

    def _refresh_summaries(self) -> None:
        for session in self.sessions():
            session.refresh_account_summaries(periodic=True)

    def refresh_account_summaries(self) -> None:
        """Send every account summary subscriber the values that changed, now."""
        for session in self.sessions():
            session.refresh_account_summaries(periodic=False)

    def _cross(self, boundary: Boundary) -> list[Event]:
        events = self.engine.on_boundary(boundary)
        if boundary is Boundary.DAY_ROLL:
            self.save()
        return events

    def advance(self, to: float) -> None:
        """Jump the clock to ``to``; everything due on the way happens in time order.

        Session boundaries are crossed one by one with the clock set to each, so
        DAY expiries, releases at the open and day rolls carry their own times.
        With a random walk or chunked fills, prices and fills also step every
        ``market.advance_step_seconds`` of simulated time. Quotes and account
        updates reach clients once, at the end.
        """
        self.catch_up()
        now = self.clock.now()
        if to < now:
            raise ValueError(f"the clock does not go back: it is {now:.0f}, asked for {to:.0f}")
        market = self.state.market
        walking = market.random_walk or bool(self.state.matching.fill_chunk)
        pending = self.hours.boundaries(now, to)
        cursor = now
        events: list[Event] = []
        while True:
            due = pending[0][0] if pending else to
            step_at = cursor + market.advance_step_seconds
            if walking and step_at < due:
                self.clock.set(step_at)
                cursor = step_at
                events += self._path_step()
                continue
            if not pending:
                break
            cursor, boundary = pending.pop(0)
            self.clock.set(cursor)
            self._processed_until = cursor
            events += self._cross(boundary)
        self.clock.set(to)
        self._processed_until = to
        self.publish(_quotes_last(events))
        self._refresh_summaries()

    def _path_step(self) -> list[Event]:
        events: list[Event] = []
        if self.state.market.random_walk:
            events += self.engine.random_walk(self._rng, self.state.market.volatility_bps)
        if self.state.matching.fill_chunk:
            events += self.engine.step()
        return events

    async def _tick_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.publish(self._path_step())

    # -- sessions -------------------------------------------------------------------

    def register(self, session: Session, client_id: int) -> bool:
        if client_id in self._clients:
            return False
        self._clients[client_id] = session
        return True

    def unregister(self, session: Session) -> None:
        self._sessions.discard(session)
        if session.client_id is not None and self._clients.get(session.client_id) is session:
            del self._clients[session.client_id]

    def sessions(self) -> list[Session]:
        return [s for s in self._sessions if s.client_id is not None]

    def market_data_lines(self) -> int:
        return sum(len(s.subs.market_data) for s in self._sessions)

    def drop_connections(self) -> None:
        for session in list(self._sessions):
            session.close()

    def refuse_connections(self, seconds: float) -> None:
        """Drop every connection and stop listening for ``seconds`` (a gateway restart)."""
        loop = asyncio.get_running_loop()
        self.listening.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop_connections()
        if self._reopen is not None:
            self._reopen.cancel()
        self._reopen = loop.call_later(seconds, self._schedule_reopen)

    def _schedule_reopen(self) -> None:
        self._reopen = None
        task = asyncio.get_running_loop().create_task(self._listen())
        task.add_done_callback(_log_failure)

    def broadcast_error(self, code: int, message: str) -> None:
        for session in self.sessions():
            session.send_error(-1, code, message)

    def snapshot(self, account: str = "") -> AccountSnapshot:
        return self.engine.snapshot(account)

    # -- events to wire messages ----------------------------------------------------

    def _order_recipients(self, client_id: int) -> list[Session]:
        owner = self._clients.get(client_id)
        out = [owner] if owner is not None else []
        watcher = self._clients.get(0)
        if watcher is not None and watcher is not owner and watcher.subs.auto_bind:
            out.append(watcher)
        return out

    def publish(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, OrderFilled):
                ex = event.execution
                for s in self._order_recipients(event.order.client_id):
                    s.send_execution(-1, ex)
                    s.send_order(event.order)
                    s.send_commission(ex)
            elif isinstance(event, OrderChanged):
                for s in self._order_recipients(event.order.client_id):
                    if event.cancelled:
                        s.send(m.order_status(event.order))
                    else:
                        s.send_order(event.order)
            elif isinstance(event, ErrorNotice):
                owner = self._clients.get(event.client_id)
                if owner is not None:
                    owner.send_error(event.req_id, event.code, event.message)
            elif isinstance(event, QuoteChanged):
                self._publish_quote(event.symbol)
            elif isinstance(event, HaltChanged):
                for s in self.sessions():
                    for req_id, sub_symbol in s.subs.market_data.items():
                        if sub_symbol == event.symbol:
                            s.send_halted(req_id, event.symbol)
            elif isinstance(event, AccountChanged):
                self._publish_account(event.symbols)

    def _publish_quote(self, symbol: str) -> None:
        for s in self.sessions():
            for req_id, sub_symbol in s.subs.market_data.items():
                if sub_symbol == symbol:
                    s.send_quote(req_id, symbol, with_close=False)

    def _publish_account(self, symbols: frozenset[str]) -> None:
        for s in self.sessions():
            if s.subs.account_updates:
                for symbol in sorted(symbols):
                    s.send_portfolio(symbol)
                s.send_account_values()
            if s.subs.positions:
                for symbol in sorted(symbols):
                    s.send_position(symbol)
            s.send_pnl()


def _quotes_last(events: list[Event]) -> list[Event]:
    """Order events in their order, then one quote and one account update per symbol."""
    quotes: dict[str, None] = {}
    accounts: set[str] = set()
    kept: list[Event] = []
    for event in events:
        if isinstance(event, QuoteChanged):
            quotes[event.symbol] = None
        elif isinstance(event, AccountChanged):
            accounts |= event.symbols
        else:
            kept.append(event)
    kept += [QuoteChanged(s) for s in quotes]
    if accounts:
        kept.append(AccountChanged(frozenset(accounts)))
    return kept


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("sim gateway could not listen again: %s", task.exception())


class ThreadedControl:
    """Proxy running each :class:`SimControl` method on the gateway's loop thread."""

    def __init__(self, handle: SimThread) -> None:
        self._handle = handle

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._handle.gateway.control, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._handle.call(lambda: method(*args, **kwargs))

        return call


class SimThread:
    """A :class:`SimGateway` running its own event loop on a daemon thread."""

    def __init__(self, gateway: SimGateway) -> None:
        self.gateway = gateway
        self.control = ThreadedControl(self)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="sim-gateway", daemon=True)

    @property
    def host(self) -> str:
        return self.gateway.host

    @property
    def port(self) -> int:
        return self.gateway.port

    def start(self, timeout: float = 10.0) -> SimThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("sim gateway did not start")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.gateway.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.gateway.stop()

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the gateway's loop and return its result."""

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def snapshot(self, account: str = "") -> AccountSnapshot:
        return self.call(lambda: self.gateway.snapshot(account))

    def wait_listening(self, timeout: float = 10.0) -> bool:
        """Block until the gateway accepts connections (e.g. after refuse_connections)."""
        return self.gateway.listening.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread.is_alive() and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)

    def __enter__(self) -> SimThread:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sim_thread(
    state: SimState | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    wire_log: str | Path | None = None,
    seed: int | None = None,
    persist: str | Path | None = None,
) -> SimThread:
    """Start a gateway on a background thread; returns once it is listening."""
    gateway = SimGateway(state, host=host, port=port, wire_log=wire_log, seed=seed, persist=persist)
    return SimThread(gateway).start()
