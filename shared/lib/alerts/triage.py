"""Decide what to do about a firing alert: start a recovery plan from its strategy, escalate it
to a human, or ignore it with a reason. Only the alert's name and labels are read, and a label
only ever selects a configured name: annotations are free text and never reach a plan."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.lib.alerts.investigation import investigation
from shared.lib.alerts.models import Action, RecoveryDecision
from shared.lib.alerts.strategies import (
    NameFromLabels,
    RecoveryStrategies,
    RecoveryStrategy,
    StrategyStep,
)
from shared.lib.catalog import Catalog
from shared.lib.planning.models import PlannedOperation, RunCondition
from shared.lib.targets import (
    AmbiguousTargetError,
    ConcreteTarget,
    SelfIdentity,
    TargetResolver,
    UnknownEnvironmentError,
    UnknownTargetError,
)
from shared.lib.targets.addresses import host_of, is_loopback, names_host
from shared.lib.targets.resolver import OWN_CONTAINER, OWN_DATABASE, OWN_DATABASE_HOST, OWN_HOST

# What a label value must look like to be compared with configured names at all.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SELF_REASONS = frozenset({OWN_CONTAINER, OWN_HOST, OWN_DATABASE, OWN_DATABASE_HOST})


@dataclass(frozen=True)
class AlertFacts:
    """What triage may look at. Annotations are left out on purpose: they are free text."""

    alertname: str
    labels: Mapping[str, str]


class _Refused(Exception):
    def __init__(
        self, action: Action, reason: str, *, target: ConcreteTarget | None = None
    ) -> None:
        self.action = action
        self.reason = reason
        self.target = target
        super().__init__(reason)


class AlertTriage:
    """Maps alerts to recovery plans using only configuration: strategies, targets, catalog."""

    def __init__(
        self,
        *,
        strategies: RecoveryStrategies,
        catalog: Catalog,
        resolver: TargetResolver,
        identity: SelfIdentity | None = None,
    ) -> None:
        self._strategies = strategies
        self._catalog = catalog
        self._resolver = resolver
        self._identity = identity or SelfIdentity()

    def decide(self, alert: AlertFacts) -> RecoveryDecision:
        own = self._self_reason(alert.labels)
        if own:
            return RecoveryDecision(action="escalated", reason=own)
        strategy = self._strategies.match(alert.alertname, alert.labels)
        if strategy is None:
            return investigation(
                alertname=alert.alertname,
                labels=alert.labels,
                resolver=self._resolver,
                catalog=self._catalog,
                unmatched=self._no_strategy(alert.alertname),
            )
        if strategy.escalate:
            reason = f"strategy '{strategy.id}' hands {_shown(alert.alertname)} to a human"
            return RecoveryDecision(action="escalated", reason=reason, strategy=strategy.id)
        try:
            return self._plan(strategy, alert.labels)
        except _Refused as refusal:
            target = refusal.target
            return RecoveryDecision(
                action=refusal.action,
                reason=refusal.reason,
                strategy=strategy.id,
                target=target.name if target else None,
                environment=target.environment if target else None,
            )

    def _plan(self, strategy: RecoveryStrategy, labels: Mapping[str, str]) -> RecoveryDecision:
        environment = self._environment(strategy, labels)
        target = self._target(strategy, labels, environment)
        chosen = [step for step in strategy.steps if _applies(step, target)]
        indexes = {step.id: index for index, step in enumerate(chosen) if step.id is not None}
        steps = tuple(self._planned(strategy, step, target, indexes) for step in chosen)
        where = f"{target.environment}/{target.name}"
        protection = self._resolver.protection_reason(target)
        mutates = [step.operation for step in steps if self._catalog.get(step.operation).mutates]
        if protection in _SELF_REASONS:
            raise _Refused(
                "escalated",
                f"{where} is {protection}; the agent never acts on itself, a human must look",
                target=target,
            )
        if protection and mutates:
            raise _Refused(
                "escalated",
                f"{where} is protected ({protection}); strategy '{strategy.id}' would "
                f"{', '.join(mutates)} it, so a human must act instead",
                target=target,
            )
        return RecoveryDecision(
            action="workflow",
            strategy=strategy.id,
            target=target.name,
            environment=target.environment,
            steps=steps,
        )

    def _environment(self, strategy: RecoveryStrategy, labels: Mapping[str, str]) -> str | None:
        if strategy.environment is None:
            return None
        known = self._resolver.environments()
        source = strategy.environment
        named = {source.aliases.get(labels[k], labels[k]) for k in source.labels if k in labels}
        if len(named) > 1:  # `env=dev` and `environment=prod`: picking one would be a guess
            shown = ", ".join(f"{k}={_shown(labels[k])}" for k in source.labels if k in labels)
            raise _Refused(
                "escalated",
                f"the alert's labels name different environments ({shown}); a human must say "
                "which, no workflow was started",
            )
        name = _configured_name(source, labels, what="environment")
        if name is not None and name not in known:
            raise _Refused(
                "ignored",
                f"unknown environment {_shown(name)} (known: {', '.join(known)}); "
                "no workflow was started",
            )
        return name

    def _target(
        self, strategy: RecoveryStrategy, labels: Mapping[str, str], environment: str | None
    ) -> ConcreteTarget:
        name = _configured_name(strategy.target, labels, what="target")
        if name is None:
            wanted = ", ".join(strategy.target.labels)
            raise _Refused(
                "ignored",
                f"strategy '{strategy.id}' reads the target from label(s) {wanted}, and the "
                "alert has none of them; no workflow was started",
            )
        try:
            return self._resolver.resolve(name, environment)
        except (UnknownTargetError, UnknownEnvironmentError, AmbiguousTargetError) as exc:
            raise _Refused("ignored", f"{exc}; no workflow was started") from None

    def _planned(
        self,
        strategy: RecoveryStrategy,
        step: StrategyStep,
        target: ConcreteTarget,
        indexes: Mapping[str, int],
    ) -> PlannedOperation:
        spec = self._catalog.get(step.operation)
        if target.kind not in spec.executors and "http" not in spec.executors:
            raise _Refused(
                "ignored",
                f"strategy '{strategy.id}': '{spec.name}' runs on {', '.join(spec.executors)} "
                f"targets, not on {target.environment}/{target.name} ({target.kind}); give the "
                "step `when: {target_kind: [...]}` in config/hitl/recovery_strategies.yml",
            )
        return PlannedOperation(
            operation=spec.name,
            target=target.name,
            environment=target.environment,
            params=self._catalog.validate_params(spec.name, step.params),
            when=_run_condition(step, indexes),
        )

    def _self_reason(self, labels: Mapping[str, str]) -> str | None:
        rules = self._strategies.self_alerts
        for name, values in rules.labels.items():
            if labels.get(name) in values:
                return (
                    f"the alert is about the agent itself (label {name}={_shown(labels[name])}); "
                    "the agent never acts on itself, a human must look"
                )
        for name in rules.identity_labels:
            value = labels.get(name)
            what = self._identity_match(value) if value else None
            if what:
                return (
                    f"label {name}={_shown(value or '')} names {what}; the agent never acts on "
                    "itself, a human must look"
                )
        return None

    def _identity_match(self, value: str) -> str | None:
        identity = self._identity
        lowered = value.strip().lower()
        host = host_of(lowered)
        if lowered in {e.lower() for e in identity.database_endpoints}:
            return OWN_DATABASE
        database_hosts = {host_of(e.lower()) for e in identity.database_endpoints}
        if host in database_hosts and not is_loopback(host):
            return OWN_DATABASE_HOST
        if host in {name.lower() for name in identity.container_names}:
            return OWN_CONTAINER
        if names_host(host, identity.hostnames):
            return OWN_HOST
        return None

    def _no_strategy(self, alertname: str) -> str:
        known = ", ".join(self._strategies.ids()) or "none"
        return (
            f"no recovery strategy matches alert {_shown(alertname)} (strategies: {known}); "
            "add one to config/hitl/recovery_strategies.yml to have the agent act on it"
        )


def _configured_name(source: NameFromLabels, labels: Mapping[str, str], *, what: str) -> str | None:
    found = source.read(labels)
    if found is None:
        return source.default
    label, value = found
    name = source.aliases.get(value, value)
    if not _NAME.fullmatch(name):
        raise _Refused(
            "ignored",
            f"label {label}={_shown(value)} is not a configured {what} name; "
            "no workflow was started",
        )
    return name


def _run_condition(step: StrategyStep, indexes: Mapping[str, int]) -> RunCondition | None:
    """A step's `only_if`, pointing at the plan index of the step it names."""
    if step.only_if is None:
        return None
    return RunCondition(step=indexes[step.only_if.step], status=step.only_if.status)


def _applies(step: StrategyStep, target: ConcreteTarget) -> bool:
    condition = step.when
    if condition is None:
        return True
    if condition.target_kind is not None and target.kind not in condition.target_kind:
        return False
    return condition.has_health_url is None or condition.has_health_url == bool(target.health_url)


def _shown(value: str) -> str:
    """A label value as safe text: quoted, non-ASCII escaped (look-alike letters show), short."""
    text = ascii(value)
    return text if len(text) <= 80 else text[:77] + "..."
