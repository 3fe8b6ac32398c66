"""Why a request could not become a plan, with the choices that would have worked."""

from __future__ import annotations

from collections.abc import Sequence


class PlanningError(ValueError):
    """A request the planner cannot turn into a valid plan; `candidates` lists what it knows."""

    def __init__(self, message: str, candidates: Sequence[str] = ()) -> None:
        self.message = message
        self.candidates = list(candidates)
        super().__init__(message)
