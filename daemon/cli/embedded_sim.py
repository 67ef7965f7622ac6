"""``--sim``: the simulated gateway in this process. Only the command line wires the sim in; the
runtime and the daemon see nothing but a gateway address (host, port)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def embedded_gateway(enabled: bool) -> Iterator[tuple[str, int] | None]:
    """A simulated gateway on a free loopback port while the block runs, or None (the rules'
    gateway) when ``enabled`` is false."""
    if not enabled:
        yield None
        return
    from tradectl.sim import SimState, start_sim_thread

    gateway = start_sim_thread(SimState.default(), host="127.0.0.1", port=0)
    try:
        yield gateway.host, gateway.port
    finally:
        gateway.stop()
