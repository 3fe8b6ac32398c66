"""Scores a plan from the declarative risk policy and the catalog; deny-by-default for anything
the configuration does not know."""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Protocol

from shared.lib.catalog import Catalog, InvalidParamsError, OperationSpec
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.risk.models import RiskAssessment, RiskTier, RuleHit
from shared.lib.risk.policy import RiskPolicy, RiskRule, RuleMatch
from shared.lib.targets import (
    AmbiguousTargetError,
    ConcreteTarget,
    TargetResolver,
    UnknownEnvironmentError,
    UnknownTargetError,
)

DEFAULT_RISK_RULE = "catalog-default-risk"
UNKNOWN_OPERATION_RULE = "deny-unknown-operation"
UNKNOWN_TARGET_RULE = "deny-unknown-target"
UNKNOWN_ENVIRONMENT_RULE = "deny-unknown-environment"
AMBIGUOUS_TARGET_RULE = "deny-ambiguous-target"
INVALID_PARAMS_RULE = "deny-invalid-params"
PROTECTED_TARGET_RULE = "deny-protected-target"


class MutationHistory(Protocol):
    """Recent mutating operations per target, from the execution ledger."""

    async def recent_mutations(self, *, target: str, environment: str | None, window_s: int) -> int:
        """How many mutating operations ran on the target within the last `window_s` seconds."""
        ...


@dataclass(frozen=True)
class _Step:
    """A step whose operation and target are known, ready for the rules."""

    index: int
    spec: OperationSpec
    target: ConcreteTarget
    command: str | None
    mutations_in_plan: int
    """Mutating steps on this target in the plan, up to and including this one."""
    flags: frozenset[str] = frozenset()
    """The kinds of the plan's request flags."""

    @property
    def where(self) -> str:
        return f"{self.spec.name} on {self.target.environment}/{self.target.name}"


class RiskAssessor:
    """Turns a plan into a RiskAssessment: the highest tier any default, rule or denial asks for."""

    def __init__(self, *, policy: RiskPolicy, catalog: Catalog, resolver: TargetResolver) -> None:
        unknown = policy.unknown_operations(catalog=catalog)
        if unknown:
            raise ValueError(f"risk rules name operations not in the catalog: {', '.join(unknown)}")
        self._policy = policy
        self._catalog = catalog
        self._resolver = resolver

    async def assess(self, plan: Plan, *, history: MutationHistory) -> RiskAssessment:
        """Score every step and the plan as a whole; hits say which rule asked for which tier."""
        hits: list[RuleHit] = []
        steps: list[_Step] = []
        mutations: Counter[tuple[str, str]] = Counter()
        flags = frozenset(flag.kind for flag in plan.flags)
        for index, planned in enumerate(plan.steps):
            step = self._known_step(index, planned, hits=hits, mutations=mutations)
            if step is not None:
                steps.append(replace(step, flags=flags))
        flap = _FlapCounter(history=history)
        for rule in self._policy.rules:
            hits.extend(await _apply(rule, steps, flap=flap))
        tier = RiskTier.highest([hit.tier for hit in hits])
        return RiskAssessment(tier=tier, hits=hits, plan_hash=plan.hash)

    def _known_step(
        self,
        index: int,
        planned: PlannedOperation,
        *,
        hits: list[RuleHit],
        mutations: Counter[tuple[str, str]],
    ) -> _Step | None:
        spec = self._operation(index, planned, hits=hits)
        target = self._target(index, planned, hits=hits)
        if spec is None or target is None:
            return None
        params = self._params(index, planned, hits=hits)
        if spec.mutates:
            mutations[(target.environment, target.name)] += 1
            hits.extend(self._protection_hits(index, spec, target))
        hits.extend(_default_hits(index, spec))
        return _Step(
            index=index,
            spec=spec,
            target=target,
            command=_command(spec, params),
            mutations_in_plan=mutations[(target.environment, target.name)],
        )

    def _operation(
        self, index: int, planned: PlannedOperation, *, hits: list[RuleHit]
    ) -> OperationSpec | None:
        spec = self._catalog.operations.get(planned.operation)
        if spec is None:
            hits.append(
                _deny(
                    UNKNOWN_OPERATION_RULE,
                    index,
                    f"operation '{planned.operation}' is not in the catalog "
                    f"(known: {', '.join(self._catalog.names())})",
                )
            )
        return spec

    def _target(
        self, index: int, planned: PlannedOperation, *, hits: list[RuleHit]
    ) -> ConcreteTarget | None:
        try:
            return self._resolver.resolve(planned.target, planned.environment)
        except UnknownTargetError as exc:
            hits.append(_deny(UNKNOWN_TARGET_RULE, index, str(exc)))
        except UnknownEnvironmentError as exc:
            hits.append(_deny(UNKNOWN_ENVIRONMENT_RULE, index, str(exc)))
        except AmbiguousTargetError as exc:
            hits.append(_deny(AMBIGUOUS_TARGET_RULE, index, str(exc)))
        return None

    def _params(
        self, index: int, planned: PlannedOperation, *, hits: list[RuleHit]
    ) -> dict[str, Any]:
        try:
            return self._catalog.validate_params(planned.operation, planned.params)
        except InvalidParamsError as exc:
            hits.append(_deny(INVALID_PARAMS_RULE, index, str(exc)))
            # Still read the command as given, so destructive patterns can fire on it too.
            return dict(planned.params)

    def _protection_hits(
        self, index: int, spec: OperationSpec, target: ConcreteTarget
    ) -> list[RuleHit]:
        reason = self._resolver.protection_reason(target)
        if reason is None:
            return []
        return [
            _deny(
                PROTECTED_TARGET_RULE,
                index,
                f"'{spec.name}' changes {target.environment}/{target.name}, which is protected "
                f"({reason})",
            )
        ]


class _FlapCounter:
    """Asks the history once per target and window within one assessment."""

    def __init__(self, *, history: MutationHistory) -> None:
        self._history = history
        self._seen: dict[tuple[str, str, int], int] = {}

    async def recent(self, target: ConcreteTarget, *, window_s: int) -> int:
        key = (target.environment, target.name, window_s)
        if key not in self._seen:
            self._seen[key] = await self._history.recent_mutations(
                target=target.name, environment=target.environment, window_s=window_s
            )
        return self._seen[key]


async def _apply(rule: RiskRule, steps: list[_Step], *, flap: _FlapCounter) -> list[RuleHit]:
    matched: list[tuple[_Step, str]] = []
    for step in steps:
        detail = await _match_step(rule.match, step, flap=flap)
        if detail is not None:
            matched.append((step, detail))
    if rule.match.min_targets is None:
        return [_hit(rule, step.index, detail) for step, detail in matched]
    targets = sorted({f"{step.target.environment}/{step.target.name}" for step, _ in matched})
    if len(targets) < rule.match.min_targets:
        return []
    return [_hit(rule, None, f"{len(targets)} distinct targets: {', '.join(targets)}")]


async def _match_step(match: RuleMatch, step: _Step, *, flap: _FlapCounter) -> str | None:
    """Why the step meets every condition of `match`, or None when one fails."""
    if not _static_match(match, step):
        return None
    details = [step.where]
    if match.command_patterns is not None:
        found = _command_match(match, step)
        if found is None:
            return None
        details.append(found)
    if match.flap is not None:
        if not step.spec.mutates:
            return None
        recent = await flap.recent(step.target, window_s=match.flap.window_s)
        total = recent + step.mutations_in_plan
        if total <= match.flap.more_than:
            return None
        details.append(
            f"{total} mutating operations within {match.flap.window_s} s "
            f"({recent} recent, {step.mutations_in_plan} in this plan)"
        )
    return "; ".join(details)


def _static_match(match: RuleMatch, step: _Step) -> bool:
    checks = (
        match.operations is None or step.spec.name in match.operations,
        match.mutating is None or step.spec.mutates == match.mutating,
        match.environments is None or step.target.environment in match.environments,
        match.target_tags is None or not match.target_tags.isdisjoint(step.target.tags),
        match.request_flags is None or not match.request_flags.isdisjoint(step.flags),
    )
    return all(checks)


def _command_match(match: RuleMatch, step: _Step) -> str | None:
    if step.command is None:
        return None
    for pattern in match.compiled_patterns():
        if pattern.search(step.command):
            return f"command `{step.command}` matches /{pattern.pattern}/"
    return None


def _command(spec: OperationSpec, params: dict[str, Any]) -> str | None:
    argv = params.get(spec.command_param) if spec.command_param else None
    if not isinstance(argv, list | tuple) or not all(isinstance(arg, str) for arg in argv):
        return None
    return shlex.join(argv)


def _default_hits(index: int, spec: OperationSpec) -> list[RuleHit]:
    tier = RiskTier(spec.default_risk.value)
    if tier is RiskTier.LOW:
        return []
    reason = f"operation '{spec.name}' is {tier} by default (config/catalog.yml)"
    return [RuleHit(rule=DEFAULT_RISK_RULE, tier=tier, reason=reason, step=index)]


def _hit(rule: RiskRule, step: int | None, detail: str) -> RuleHit:
    return RuleHit(rule=rule.id, tier=rule.tier, reason=f"{rule.reason} ({detail})", step=step)


def _deny(rule: str, step: int, reason: str) -> RuleHit:
    return RuleHit(rule=rule, tier=RiskTier.CRITICAL, reason=reason, step=step)
