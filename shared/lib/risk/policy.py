"""Risk rules as written in config/hitl/risk_policy.yml, validated into typed models at start-up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.lib.catalog import Catalog
from shared.lib.config_errors import YamlDocument, read_yaml
from shared.lib.risk.models import RiskTier

RULE_ID = r"^[a-z][a-z0-9-]*$"
MAX_WINDOW_S = 7 * 86400


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regex does not compile: {exc}") from None
    return pattern


CommandPattern = Annotated[str, AfterValidator(_compiles)]


class FlapCondition(BaseModel):
    """More than `more_than` mutating operations on one target within `window_s` seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    more_than: int = Field(ge=0, le=1000)
    window_s: int = Field(gt=0, le=MAX_WINDOW_S)


class RuleMatch(BaseModel):
    """Conditions a step (or the plan, for min_targets) must meet; all given ones must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    operations: frozenset[str] | None = None
    mutating: bool | None = None
    environments: frozenset[str] | None = None
    target_tags: frozenset[str] | None = None
    command_patterns: tuple[CommandPattern, ...] | None = None
    flap: FlapCondition | None = None
    min_targets: int | None = Field(default=None, ge=1, le=1000)
    request_flags: frozenset[str] | None = None
    """The request carries ANY of these flags (kinds set by the planner from the text, such as
    `rule-change`); never set by a model."""

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("a rule needs at least one condition under `match`")
        return self

    def compiled_patterns(self) -> list[re.Pattern[str]]:
        # re caches compiled patterns, so compiling on each call stays cheap.
        return [re.compile(pattern) for pattern in self.command_patterns or ()]


class RiskRule(BaseModel):
    """A rule that raises a step (or the plan) to `tier` when its conditions match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=RULE_ID, max_length=64)
    reason: str = Field(min_length=1, max_length=300)
    tier: RiskTier
    match: RuleMatch


class RiskPolicy(BaseModel):
    """Every risk rule, in the order they are reported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    rules: tuple[RiskRule, ...] = ()

    @classmethod
    def load(cls, path: Path, *, catalog: Catalog | None = None) -> Self:
        """The policy from `path`; with `catalog`, rules naming unknown operations are refused."""
        document = read_yaml(path, what="risk policy")
        policy = document.validate(cls, context="config/hitl/risk_policy.yml")
        document.require_unique(
            [rule.id for rule in policy.rules],
            section="rules",
            field="id",
            problem="duplicate rule id '{key}'",
            fix="give every rule its own id; hits and audit rows name rules by it",
        )
        if catalog is not None:
            _check_operations(policy, document, catalog=catalog)
        return policy

    def unknown_operations(self, *, catalog: Catalog) -> list[str]:
        """Operations rules name that the catalog lacks; such a rule could never fire."""
        named = {name for rule in self.rules for name in rule.match.operations or ()}
        return sorted(named - set(catalog.operations))


def _check_operations(policy: RiskPolicy, document: YamlDocument, *, catalog: Catalog) -> None:
    for index, rule in enumerate(policy.rules):
        for name in sorted(rule.match.operations or ()):
            if name not in catalog.operations:
                raise document.error(
                    f"operation '{name}' is not in the catalog",
                    at=("rules", index, "match", "operations"),
                    fix=f"use one of: {', '.join(catalog.names())}",
                )
