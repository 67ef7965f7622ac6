"""A connected session for one command: the gateway (or an in-process sim), the journal and the
adapter, opened in the right order and always closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from daemon.ib import ConnectionSettings, IbAdapter, Progress
from daemon.journal import Journal
from schemas.models import RuleSet


@dataclass
class Session:
    adapter: IbAdapter
    journal: Journal | None
    sim_port: int | None


def connection_settings(
    rules: RuleSet, *, readonly: bool, host: str | None = None, port: int | None = None
) -> ConnectionSettings:
    gateway = rules.gateway
    return ConnectionSettings(
        host=host or gateway.host,
        port=port or gateway.port,
        client_id=gateway.client_id,
        account=rules.account.id,
        live_allowed=rules.account.live,
        timeout=gateway.connect_timeout.total_seconds(),
        readonly=readonly,
    )


@contextmanager
def open_session(
    rules: RuleSet,
    *,
    state_dir: Path,
    sim: bool,
    readonly: bool,
    progress: Callable[[Progress], None] | None = None,
) -> Iterator[Session]:
    """``readonly`` connects read-only and reads the journal without taking its lock (``plan``
    beside a running daemon); otherwise the journal is locked for this process."""
    with ExitStack() as stack:
        host = port = None
        if sim:
            from daemon.sim import SimState, start_sim_thread

            gateway = start_sim_thread(SimState.default(), host="127.0.0.1", port=0)
            stack.callback(gateway.stop)
            host, port = gateway.host, gateway.port
        journal = Journal.open_read_only(state_dir) if readonly else Journal.open(state_dir)
        if journal is not None:
            stack.callback(journal.close)
        settings = connection_settings(rules, readonly=readonly, host=host, port=port)
        adapter = IbAdapter(settings, journal, progress=progress)
        stack.callback(adapter.disconnect)
        adapter.connect()
        yield Session(adapter=adapter, journal=journal, sim_port=port)
