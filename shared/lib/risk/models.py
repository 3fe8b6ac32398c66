"""The risk a plan carries: its tier and every policy rule that fired, with why."""

from __future__ import annotations

from enum import StrEnum

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


class RiskView(BaseModel):
    """A tier and its reasons, as replies and workflow views show them."""

    tier: str
    reasons: list[str]
