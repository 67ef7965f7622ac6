"""A connected session for one command: the gateway, the journal and the adapter, opened in the
right order and always closed. ``gateway`` overrides the rules' address (the command line's
``--sim`` passes its embedded simulator's)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tradectl.broker_types import Progress
from tradectl.ib import ConnectionSettings, IbAdapter, early
from tradectl.ib.pacer import DEFAULT_RATE
from tradectl.journal import Journal, utc_now
from tradectl.market_clock import MarketClock
from tradectl.runtime.reconcile import PassResult, reconcile_pass
from tradectl.runtime.tracking import tracker_for
from tradectl.schemas.models import RuleSet


def quiet_client_logging() -> None:
    """The adapter reports every gateway error itself, with IB's code and text, in the journal
    and the command's output; ib_insync's own log lines would repeat them (and warn about
    orders it does not track, since the adapter bypasses its order bookkeeping)."""
    logging.getLogger("ib_insync").setLevel(logging.CRITICAL)


@dataclass
class Session:
    adapter: IbAdapter
    journal: Journal | None


def connection_settings(
    rules: RuleSet,
    *,
    readonly: bool,
    host: str | None = None,
    port: int | None = None,
    pacing_rate: float = DEFAULT_RATE,
    stream_quotes: bool = False,
    live_state: bool = False,
) -> ConnectionSettings:
    """``stream_quotes`` and ``live_state`` for the daemon, which reads quotes, orders and
    executions on every pass; a one-shot command takes snapshots, reads everything afresh and
    leaves the lines to it (docs/apply.md, docs/daemon.md "Live state")."""
    gateway = rules.gateway
    return ConnectionSettings(
        host=host or gateway.host,
        port=port or gateway.port,
        client_id=gateway.client_id,
        account=rules.account.id,
        live_allowed=rules.account.live,
        timeout=gateway.connect_timeout.total_seconds(),
        readonly=readonly,
        market_data_lines=gateway.market_data_lines,
        stream_quotes=stream_quotes,
        pacing_rate=pacing_rate,
        live_state=live_state,
        full_refresh_seconds=gateway.full_refresh_every.total_seconds(),
    )


@contextmanager
def open_session(
    rules: RuleSet,
    *,
    state_dir: Path | None,
    readonly: bool,
    gateway: tuple[str, int] | None = None,
    progress: Callable[[Progress], None] | None = None,
    pacing_rate: float = DEFAULT_RATE,
    verify_account: bool = True,
) -> Iterator[Session]:
    """``readonly`` connects read-only and reads the journal without taking its lock (``plan``
    beside a running daemon); otherwise the journal is locked for this process. Without a
    ``state_dir`` there is no journal; ``verify_account`` False leaves the account checks to
    the caller (see ``IbAdapter.connect``)."""
    host, port = gateway if gateway is not None else (None, None)
    with ExitStack() as stack:
        # The journal stamps its records on the gateway's clock, as in the daemon.
        market_clock = MarketClock()

        def market_now() -> datetime:
            return market_clock.now(utc_now())

        journal = None
        if state_dir is not None:
            journal = (
                Journal.open_read_only(state_dir, clock=market_now)
                if readonly
                else Journal.open(state_dir, clock=market_now)
            )
        if journal is not None:
            stack.callback(journal.close)
        settings = connection_settings(
            rules, readonly=readonly, host=host, port=port, pacing_rate=pacing_rate
        )
        # ``tradectl apply`` may have connected while it loaded: that connection is used only
        # when it was made with exactly these settings (``tradectl.ib.early``).
        adapter = IbAdapter(settings, journal, link=early.claim(settings))
        adapter.market_clock = market_clock
        stack.callback(adapter.disconnect)
        # The tracker listens before the connection opens: every update is journaled.
        tracker_for(adapter, journal, progress=progress)
        adapter.connect(verify_account=verify_account)
        yield Session(adapter=adapter, journal=journal)


def plan_against_gateway(
    rules: RuleSet,
    *,
    state_dir: Path,
    gateway: tuple[str, int] | None = None,
    halted: bool = False,
) -> PassResult:
    """``tradectl plan`` against a gateway: a read-only connection, the journal read without its
    lock, and nothing sent."""
    with open_session(rules, state_dir=state_dir, gateway=gateway, readonly=True) as session:
        return reconcile_pass(
            rules,
            session.adapter,
            session.journal,
            clock=utc_now,
            confirm=None,
            act=False,
            ack_timeout=0.0,
            trigger="plan",
            halted=halted,
        )
