"""Planning: turning a request into a validated plan of catalog operations.

Planners live in their own modules (`offline`, `llm`, `conversation`); this package exports only
the plan models and errors, so any domain can import a `Plan` without importing a planner.
"""

from shared.lib.planning.errors import (
    ClarificationNeeded,
    PlanningError,
    PlanOutcome,
    PlanRejected,
)
from shared.lib.planning.models import Plan, PlannedOperation, RequestFlag

__all__ = [
    "ClarificationNeeded",
    "Plan",
    "PlanOutcome",
    "PlanRejected",
    "PlannedOperation",
    "PlanningError",
    "RequestFlag",
]
