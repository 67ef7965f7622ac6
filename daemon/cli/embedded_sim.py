"""``--sim``: the simulated gateway in this process. Only the command line wires the sim in; the
runtime and the daemon see nothing but a gateway address (host, port).

The simulated account lives beside the journal (``sim-account.yaml`` in the ``--sim`` state
directory), so the account and the journal's memory of it stay one story across runs: a second
``make demo`` finds the orders and positions the first one left, as a real gateway would, instead
of a fresh account that the journal would contradict. ``run`` and ``apply`` write the account
back when they stop (into a state directory that exists and passes the journal's permission
check); ``plan``, ``validate`` and ``doctor`` only read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SIM_ACCOUNT_FILE = "sim-account.yaml"


@contextmanager
def embedded_gateway(
    enabled: bool, state_dir: Path | None = None, *, keep_account: bool = False
) -> Iterator[tuple[str, int] | None]:
    """A simulated gateway on a free loopback port while the block runs, or None (the rules'
    gateway) when ``enabled`` is false. With ``state_dir`` the account is read from there (a new
    one the first time); ``keep_account`` writes it back when the block ends."""
    if not enabled:
        yield None
        return
    from tradectl.private_files import make_private
    from tradectl.sim import SimState, start_sim_thread

    saved = None if state_dir is None else state_dir / SIM_ACCOUNT_FILE
    state = SimState.load(saved) if saved is not None and saved.exists() else SimState.default()
    # The kept account's clock is the host's, as the embedded gateway's always is; the state file
    # records when it was written, which would put the gateway that far behind.
    state.clock = state.clock.model_copy(update={"start": None})
    gateway = start_sim_thread(state, host="127.0.0.1", port=0)
    try:
        yield gateway.host, gateway.port
    finally:
        kept = gateway.call(gateway.gateway.engine.export_state) if keep_account else None
        gateway.stop()
        if kept is not None and saved is not None and _may_keep_account_in(saved.parent):
            kept.save(saved)
            make_private(saved)


def _may_keep_account_in(state_dir: Path) -> bool:
    """Only where the journal may live: never into a directory others can read, which the
    command refused (docs/security.md)."""
    from tradectl.private_files import LoosePermissions, check_state_dir

    if not state_dir.is_dir():
        return False
    try:
        check_state_dir(state_dir)
    except LoosePermissions:
        return False
    return True
