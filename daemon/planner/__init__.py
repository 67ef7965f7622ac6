"""The pure planner: rules x observed account -> plan. Imports only schemas and the stdlib."""

from daemon.planner.gate import gate
from daemon.planner.plan import plan

__all__ = ["gate", "plan"]
