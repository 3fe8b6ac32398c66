"""The checks every planned step passes before it may be proposed, whoever planned it: the agent
itself and protected targets are refused, and a free-form command must pass the command policy.
A refusal here names the rule that fired and stops the whole plan."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.lib.catalog import Catalog
from shared.lib.commands import CommandPolicy
from shared.lib.planning.errors import PlanRejected
from shared.lib.planning.models import PlannedOperation
from shared.lib.targets import ConcreteTarget, TargetResolver

SELF_TARGET_RULE = "deny-self-target"
PROTECTED_TARGET_RULE = "deny-protected-target"


class SafetyFunnel:
    """Refuses at planning what the runner would refuse later, so it never reaches approvers."""

    def __init__(
        self, *, catalog: Catalog, resolver: TargetResolver, commands: CommandPolicy | None
    ) -> None:
        self._catalog = catalog
        self._resolver = resolver
        self._commands = commands

    def check(self, steps: Iterable[PlannedOperation]) -> None:
        """Raise PlanRejected for the first step that must not be planned."""
        for step in steps:
            target = self._resolver.resolve(step.target, step.environment)
            self.check_target(step.operation, target)
            self.check_command(step.operation, step.params, environment=target.environment)

    def check_target(self, operation: str, target: ConcreteTarget) -> None:
        where = f"{target.environment}/{target.name}"
        own = self._resolver.self_reason(target)
        if own is not None:
            raise PlanRejected(
                SELF_TARGET_RULE,
                f"{where} is {own}; the agent never operates on itself, ask a person",
            )
        spec = self._catalog.get(operation)
        reason = self._resolver.protection_reason(target)
        if spec.mutates and reason is not None:
            raise PlanRejected(
                PROTECTED_TARGET_RULE,
                f"'{operation}' would change {where}, which is protected ({reason}); "
                "change it by hand or remove `protected` in environments.yml",
            )

    def check_command(
        self, operation: str, params: dict[str, Any], *, environment: str | None
    ) -> None:
        spec = self._catalog.get(operation)
        if self._commands is None or spec.command_param is None:
            return
        argv = params.get(spec.command_param)
        if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
            return  # the catalog's parameter validation reports it
        verdict = self._commands.evaluate(
            argv, environment=environment, allows_shell=spec.allows_shell
        )
        if not verdict.allowed:
            raise PlanRejected(
                verdict.rule_id or "command-policy",
                f"command refused: {' '.join(argv)!r}: {verdict.reason}",
            )
