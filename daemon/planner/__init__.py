"""The pure planner: rules x observed account -> plan. Imports only schemas and the stdlib."""

from tradectl.planner.gate import gate
from tradectl.planner.plan import plan

__all__ = ["gate", "plan"]
