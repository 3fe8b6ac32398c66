"""Requests, plans and risk assessments: the data that flows through the approval workflow."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RiskTier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _TIER_ORDER.index(self)

    @classmethod
    def highest(cls, tiers: list[RiskTier]) -> RiskTier:
        return max(tiers, key=lambda tier: tier.rank, default=cls.LOW)


_TIER_ORDER = [RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL]

RequestSource = Literal["api", "chat", "alert", "cli"]


class PlannedOperation(BaseModel):
    """One step of a plan: a catalog operation on a logical target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: str = Field(min_length=1, max_length=64)
    target: str = Field(min_length=1, max_length=128)
    environment: str | None = Field(default=None, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


class RequestFlag(BaseModel):
    """Something in the request an approver must see, such as text that tries to change the
    rules; risk rules match on `kind` (request_flags), never lowering a tier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(min_length=1, max_length=64)
    evidence: str = Field(default="", max_length=200)


class Plan(BaseModel):
    """The ordered operations a workflow will run once its gate allows it.

    `flags` come from the request's text (never from a model) and are not part of the hash:
    an approval binds the steps; the flags only ever raise the tier.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: list[PlannedOperation] = Field(min_length=1, max_length=50)
    summary: str = ""
    flags: list[RequestFlag] = Field(default_factory=list)

    def normalized(self) -> list[dict[str, Any]]:
        return [step.model_dump(mode="json") for step in self.steps]

    @property
    def hash(self) -> str:
        """Hash of the exact normalized steps; an approval is bound to it."""
        canonical = json.dumps(self.normalized(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class WorkRequest(BaseModel):
    """A normalized request from any source: plain text, structured steps, or an alert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: RequestSource = "api"
    requester: str
    text: str | None = Field(default=None, max_length=4000)
    steps: list[PlannedOperation] | None = None
    environment: str | None = None
    alert: dict[str, Any] | None = None
    request_id: str | None = None


class RuleHit(BaseModel):
    """One policy rule that fired, the tier it asks for and why."""

    model_config = ConfigDict(frozen=True)

    rule: str
    tier: RiskTier
    reason: str
    step: int | None = None


class RiskAssessment(BaseModel):
    """The plan's tier (the highest any rule asked for) and every rule that fired."""

    model_config = ConfigDict(frozen=True)

    tier: RiskTier
    hits: list[RuleHit] = Field(default_factory=list)
    plan_hash: str

    @property
    def reasons(self) -> list[str]:
        return [f"{hit.rule}: {hit.reason}" for hit in self.hits]
