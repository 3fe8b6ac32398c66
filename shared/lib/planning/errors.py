"""Why a request could not become a plan, with the choices that would have worked, and the
planner's outcome as data: a plan, a question back, or a refusal naming its rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.planning.models import Plan

OutcomeStatus = Literal["planned", "needs_clarification", "rejected"]


class PlanningError(ValueError):
    """A request the planner cannot turn into a valid plan; `candidates` lists what it knows.

    A plain PlanningError is a question back (the request is unclear); PlanRejected is a
    refusal that no rewording of the same request would change.
    """

    status: OutcomeStatus = "needs_clarification"

    def __init__(self, message: str, candidates: Sequence[str] = ()) -> None:
        self.message = message
        self.candidates = list(candidates)
        super().__init__(message)

    @property
    def question(self) -> str:
        return self.message


class ClarificationNeeded(PlanningError):
    """The request is understood only in part: the question says what is missing."""


class PlanRejected(PlanningError):
    """The request asks for something the agent must not do; `rule` names what refused it."""

    status: OutcomeStatus = "rejected"

    def __init__(self, rule: str, reason: str) -> None:
        self.rule = rule
        self.reason = reason
        super().__init__(f"refused by rule {rule}: {reason}")


class PlanOutcome(BaseModel):
    """What a planner made of one request, for callers that report it (REST, chat)."""

    model_config = ConfigDict(frozen=True)

    status: OutcomeStatus
    plan: Plan | None = None
    question: str | None = None
    candidates: list[str] = Field(default_factory=list)
    rule: str | None = None
    reason: str | None = None

    @classmethod
    def planned(cls, plan: Plan) -> PlanOutcome:
        return cls(status="planned", plan=plan)

    @classmethod
    def from_error(cls, error: PlanningError) -> PlanOutcome:
        if isinstance(error, PlanRejected):
            return cls(status="rejected", rule=error.rule, reason=error.reason)
        return cls(
            status="needs_clarification", question=error.message, candidates=error.candidates
        )
