"""Approval policy: per risk tier, run at once or wait for N approvers with given roles, how long
to wait and what a timeout means; read from config/hitl/approval_policy.yml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from shared.lib.config_errors import YamlDocument, read_yaml
from shared.lib.errors import ConflictError, ForbiddenError
from shared.lib.principals import Role
from shared.lib.risk.models import RiskTier

TimeoutOutcome = Literal["reject", "expire"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TTL_S = 30 * 86400


def parse_duration(value: Any) -> int:
    """Seconds in a duration such as `90s`, `30m`, `4h` or `2d` (a bare number is seconds)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a duration; write a number with s, m, h or d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[int, BeforeValidator(parse_duration), Field(gt=0, le=MAX_TTL_S)]


@dataclass(frozen=True)
class ApprovalRequirement:
    """What a plan of one tier needs before it runs."""

    auto: bool
    approvals: int
    roles: frozenset[str]
    ttl_s: int
    on_timeout: TimeoutOutcome


class TierPolicy(BaseModel):
    """One tier's rule as written: `auto: true`, or approvals, roles, ttl and on_timeout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto: bool = False
    approvals: int = Field(default=0, ge=0, le=10)
    roles: frozenset[Role] = frozenset()
    ttl: Duration | None = None
    on_timeout: TimeoutOutcome = "expire"

    @model_validator(mode="after")
    def _auto_or_approvers(self) -> Self:
        if self.auto and (self.approvals or self.roles or self.ttl):
            raise ValueError("an auto tier takes no approvals, roles or ttl")
        if not self.auto and (self.approvals < 1 or not self.roles or self.ttl is None):
            raise ValueError("a tier that is not auto needs approvals >= 1, roles and a ttl")
        return self

    def requirement(self) -> ApprovalRequirement:
        return ApprovalRequirement(
            auto=self.auto,
            approvals=self.approvals,
            roles=frozenset(self.roles),
            ttl_s=self.ttl or 0,
            on_timeout=self.on_timeout,
        )


class TierPolicies(BaseModel):
    """Every tier must be written out; a missing one stops start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: TierPolicy
    medium: TierPolicy
    high: TierPolicy
    critical: TierPolicy


class ApprovalPolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    tiers: TierPolicies


class ApprovalPolicy:
    """Looks up the approval requirement of a risk tier."""

    def __init__(self, *, config: ApprovalPolicyFile) -> None:
        self._requirements = {tier: _tier_policy(config, tier).requirement() for tier in RiskTier}

    @classmethod
    def load(cls, path: Path) -> Self:
        """The policy from `path`, or a ConfigError naming the file, line and field."""
        document = read_yaml(path, what="approval policy")
        config = document.validate(ApprovalPolicyFile, context="config/hitl/approval_policy.yml")
        _check_escalates(config, document)
        return cls(config=config)

    def requirement(self, tier: RiskTier) -> ApprovalRequirement:
        return self._requirements[tier]


def _check_escalates(config: ApprovalPolicyFile, document: YamlDocument) -> None:
    # A riskier tier that asked for less than a safer one is almost surely a typo.
    previous: tuple[RiskTier, TierPolicy] | None = None
    for tier in RiskTier:
        current = _tier_policy(config, tier)
        if previous is not None and _weaker(current, than=previous[1]):
            raise document.error(
                f"tier '{tier}' asks for less than the lower tier '{previous[0]}'",
                at=("tiers", tier.value),
                fix="a higher tier needs at least as many approvals and is auto only if the "
                "lower tiers are",
            )
        previous = (tier, current)


def _tier_policy(config: ApprovalPolicyFile, tier: RiskTier) -> TierPolicy:
    policy: TierPolicy = getattr(config.tiers, tier.value)
    return policy


def _weaker(policy: TierPolicy, *, than: TierPolicy) -> bool:
    if policy.auto:
        return not than.auto
    return not than.auto and policy.approvals < than.approvals


# The agent can never approve anything, whoever holds its key.
AGENT_PRINCIPAL = "devops-agent"


@dataclass(frozen=True)
class DecisionSubject:
    """What decides who may decide on a request: its requester, who shaped its plan, the roles
    its tier allows, and whether its TTL has passed (`expires_at` set only then)."""

    approval_id: str
    requester: str
    plan_authors: tuple[str, ...]
    allowed_roles: tuple[str, ...]
    risk_level: str
    expires_at: datetime | None = None


def authorize_decider(subject: DecisionSubject, *, actor: str, roles: frozenset[str]) -> str:
    """The role `actor` decides with, or a ForbiddenError/ConflictError saying why not."""
    allowed_roles = sorted(subject.allowed_roles)
    if subject.expires_at is not None:
        raise ConflictError(
            f"approval '{subject.approval_id}' expired at {subject.expires_at.isoformat()}; "
            "nothing was changed; start the workflow again if the work is still needed"
        )
    if actor == AGENT_PRINCIPAL:
        raise ForbiddenError("the agent cannot approve its own work; a human must decide")
    if actor == subject.requester:
        raise ForbiddenError(
            f"'{actor}' requested this work and cannot decide on it; ask another approver "
            f"with one of the roles {allowed_roles}"
        )
    if actor in subject.plan_authors:
        raise ForbiddenError(
            f"'{actor}' edited this plan and cannot approve the edit; ask another approver "
            f"with one of the roles {allowed_roles}"
        )
    allowed = sorted(roles & set(subject.allowed_roles))
    if not allowed:
        raise ForbiddenError(
            f"'{actor}' has roles {sorted(roles)}; a {subject.risk_level} approval needs one "
            f"of {allowed_roles}"
        )
    return allowed[0]
