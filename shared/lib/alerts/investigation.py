"""Alerts no strategy covers are not dropped: when their labels name a configured target, the
agent reads it (health, logs) as a read-only workflow and escalates with what it found; when
they name none, it escalates at once."""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.lib.alerts.models import RecoveryDecision
from shared.lib.catalog.models import Catalog
from shared.lib.planning.models import PlannedOperation
from shared.lib.targets.addresses import host_of
from shared.lib.targets.models import (
    AmbiguousTargetError,
    UnknownEnvironmentError,
    UnknownTargetError,
)
from shared.lib.targets.resolver import ConcreteTarget, TargetResolver

INVESTIGATION = "investigate-unmatched"
"""The strategy id an investigation is recorded under."""
NAME_LABELS = ("service", "job", "container")
ENVIRONMENT_LABELS = ("env", "environment")
READS = ("health", "logs")
PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.-]{0,127}$")
"""What Prometheus alert names look like; anything else is not investigated on its say-so."""


def investigation(
    *,
    alertname: str,
    labels: Mapping[str, str],
    resolver: TargetResolver,
    catalog: Catalog,
    unmatched: str,
) -> RecoveryDecision:
    """A read-only look at the target the labels name, or an escalation when they name none;
    `unmatched` says which strategies exist and how to add one."""
    if not PLAIN_NAME.match(alertname):
        return RecoveryDecision(
            action="escalated",
            reason=f"{unmatched}; its name {ascii(alertname)[:80]} is not a plain alert name, so "
            "the agent reads nothing on its say-so and a human must look",
        )
    target = named_target(labels, resolver)
    if target is None:
        return RecoveryDecision(
            action="escalated",
            reason=f"{unmatched}; its labels name no configured target (service, job, "
            "container or instance), so a human must look",
        )
    if resolver.self_reason(target):
        return RecoveryDecision(
            action="escalated",
            reason=f"{target.environment}/{target.name} is the agent itself; a human must look",
            target=target.name,
            environment=target.environment,
        )
    reads = tuple(
        PlannedOperation(operation=name, target=target.name, environment=target.environment)
        for name in READS
        if target.kind in catalog.get(name).executors
    )
    if not reads:
        return RecoveryDecision(
            action="escalated",
            reason=f"no strategy matches {alertname!r}, and {target.environment}/{target.name} "
            f"({target.kind}) has nothing the agent can read; a human must look",
        )
    return RecoveryDecision(
        action="workflow",
        strategy=INVESTIGATION,
        reason=f"no strategy matches {alertname!r}: reading {target.environment}/{target.name} "
        "and escalating with what was found",
        target=target.name,
        environment=target.environment,
        steps=reads,
    )


def named_target(labels: Mapping[str, str], resolver: TargetResolver) -> ConcreteTarget | None:
    """The configured target the labels name by service/job/container, or by an `instance`
    host:port whose host is a configured container or SSH host."""
    environment = next(
        (labels[key] for key in ENVIRONMENT_LABELS if labels.get(key) in resolver.environments()),
        None,
    )
    for key in NAME_LABELS:
        value = labels.get(key)
        if not value:
            continue
        try:
            return resolver.resolve(value, environment)
        except (UnknownTargetError, UnknownEnvironmentError, AmbiguousTargetError):
            continue
    instance = labels.get("instance")
    if instance:
        host = host_of(instance)
        for target in resolver.targets(environment):
            names = {target.name.lower()}
            names.add(str(getattr(target, "container", "") or "").lower())
            names.add(str(getattr(target, "host", "") or "").lower())
            if host in names:
                return target
    return None
