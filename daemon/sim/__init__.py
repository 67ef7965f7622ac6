"""The simulated IB Gateway (see :mod:`tradectl.sim.server` for the in-process API)."""

from tradectl.sim.control import SimControl
from tradectl.sim.engine import Engine
from tradectl.sim.model import AccountSnapshot
from tradectl.sim.server import SimGateway, SimThread, start_sim_thread
from tradectl.sim.state import SimState

__all__ = [
    "AccountSnapshot",
    "Engine",
    "SimControl",
    "SimGateway",
    "SimState",
    "SimThread",
    "start_sim_thread",
]
