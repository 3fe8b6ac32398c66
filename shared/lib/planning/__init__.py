"""Planning: turning a request into a validated plan of catalog operations.

Planners live in their own modules (`offline`, `llm`, `conversation`); this package exports only
the plan models and errors, so any domain can import a `Plan` without importing a planner.
"""

from shared.lib.planning.errors import PlanningError
from shared.lib.planning.models import Plan, PlannedOperation

__all__ = ["Plan", "PlannedOperation", "PlanningError"]
