"""The simulated IB Gateway (see :mod:`daemon.sim.server` for the in-process API)."""

from daemon.sim.control import SimControl
from daemon.sim.engine import Engine
from daemon.sim.model import AccountSnapshot
from daemon.sim.server import SimGateway, SimThread, start_sim_thread
from daemon.sim.state import SimState

__all__ = [
    "AccountSnapshot",
    "Engine",
    "SimControl",
    "SimGateway",
    "SimState",
    "SimThread",
    "start_sim_thread",
]
