"""Planning: turning a request into a validated plan of catalog operations."""

from shared.lib.planning.errors import (
    ClarificationNeeded,
    PlanningError,
    PlanOutcome,
    PlanRejected,
)
from shared.lib.planning.offline import OfflinePlanner
from shared.lib.planning.vocabulary import VOCABULARY_FILE, Vocabulary, load_vocabulary

__all__ = [
    "VOCABULARY_FILE",
    "ClarificationNeeded",
    "OfflinePlanner",
    "PlanOutcome",
    "PlanRejected",
    "PlanningError",
    "Vocabulary",
    "load_vocabulary",
]
