"""Planning: turning a request into a validated plan of catalog operations."""

from shared.lib.planning.errors import PlanningError
from shared.lib.planning.offline import INTENTS, Intent, OfflinePlanner

__all__ = ["INTENTS", "Intent", "OfflinePlanner", "PlanningError"]
