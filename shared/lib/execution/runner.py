"""The one way to run infrastructure work: a catalog operation on a configured target, checked
against protection and the command policy, then handed to the executor for the target's kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.catalog.models import (
    Catalog,
    InvalidParamsError,
    OperationSpec,
    UnknownOperationError,
)
from shared.lib.commands.policy import CommandPolicy
from shared.lib.execution.models import (
    DEFAULT_OUTPUT_CAP,
    ExecutionResult,
    ExecutionStatus,
    Invocation,
    OperationCall,
)
from shared.lib.execution.protocol import Executor
from shared.lib.targets.models import (
    AmbiguousTargetError,
    DockerTarget,
    HttpTarget,
    SshTarget,
    UnknownEnvironmentError,
    UnknownTargetError,
)
from shared.lib.targets.resolver import TargetResolver


class Refusal(BaseModel):
    """Why a request will not run; produced before any executor is called."""

    model_config = ConfigDict(frozen=True)

    operation: str
    target: str
    environment: str | None = None
    reason: str
    data: dict[str, Any] = Field(default_factory=dict)

    def as_result(self) -> ExecutionResult:
        argv = self.data.get("argv")
        return ExecutionResult(
            status=ExecutionStatus.REFUSED,
            operation=self.operation,
            target=self.target,
            invocation=Invocation(
                kind="none",
                endpoint=self.environment or "",
                call=f"{self.operation} {self.target}",
                argv=tuple(argv) if isinstance(argv, list) else None,
            ),
            reason=self.reason,
            data=self.data,
        )


class OperationRunner:
    """Validates, guards and dispatches operations; user mistakes come back as refusals."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        targets: TargetResolver,
        policy: CommandPolicy,
        executors: Mapping[str, Executor],
        output_cap: int = DEFAULT_OUTPUT_CAP,
    ) -> None:
        self._catalog = catalog
        self._targets = targets
        self._policy = policy
        self._executors = dict(executors)
        self._output_cap = output_cap

    def prepare(
        self, *, operation: str, target: str, environment: str | None, params: Mapping[str, Any]
    ) -> OperationCall | Refusal:
        """The call that would run, or why it will not; touches no executor."""
        refuse = _Refuser(operation=operation, target=target, environment=environment)
        try:
            spec = self._catalog.get(operation)
            normalized = self._catalog.validate_params(operation, params)
            resolved = self._targets.resolve(target, environment)
        except UnknownOperationError as exc:
            return refuse(str(exc), known=exc.known)
        except InvalidParamsError as exc:
            return refuse(f"{exc}; fix the parameter and ask again", field=exc.field)
        except (UnknownTargetError, UnknownEnvironmentError) as exc:
            return refuse(str(exc), known=self._targets.names())
        except AmbiguousTargetError as exc:
            return refuse(str(exc), environments=exc.environments)
        refuse = refuse.within(resolved.environment)
        return self._guard(spec, resolved, normalized, refuse)

    async def run(
        self, *, operation: str, target: str, environment: str | None, params: Mapping[str, Any]
    ) -> ExecutionResult:
        """Prepare the call and, unless refused, execute it with the target kind's executor."""
        prepared = self.prepare(
            operation=operation, target=target, environment=environment, params=params
        )
        if isinstance(prepared, Refusal):
            return prepared.as_result()
        return await self._executors[prepared.target.kind].execute(prepared)

    async def run_call(self, call: OperationCall) -> ExecutionResult:
        """Run a call prepared earlier (say, before an approval), checking it all again first."""
        return await self.run(
            operation=call.operation,
            target=call.target.name,
            environment=call.target.environment,
            params=call.params,
        )

    def _guard(
        self,
        spec: OperationSpec,
        resolved: DockerTarget | SshTarget,
        params: dict[str, Any],
        refuse: _Refuser,
    ) -> OperationCall | Refusal:
        target = self._executor_target(spec, resolved)
        if target is None:
            kinds = ", ".join(spec.executors)
            return refuse(
                f"'{spec.name}' is not available for {resolved.kind} targets such as "
                f"'{resolved.name}' (it runs on: {kinds}); choose an operation for "
                f"{resolved.kind} targets",
            )
        executor = self._executors.get(target.kind)
        if executor is None or not executor.supports(spec.name):
            return refuse(f"no {target.kind} executor that runs '{spec.name}' is configured")
        reason = self._targets.protection_reason(resolved)
        if spec.mutates and reason:
            return refuse(
                f"'{resolved.name}' in {resolved.environment} is protected ({reason}); "
                f"the agent will not {spec.name} it, a human has to",
                protected=True,
                protection_reason=reason,
            )
        return self._checked_call(spec, target, resolved, params, refuse)

    def _checked_call(
        self,
        spec: OperationSpec,
        target: DockerTarget | SshTarget | HttpTarget,
        resolved: DockerTarget | SshTarget,
        params: dict[str, Any],
        refuse: _Refuser,
    ) -> OperationCall | Refusal:
        if target.kind == "http" and "url" not in params:
            if not resolved.health_url:
                return refuse(
                    f"'{resolved.name}' has no health_url; pass `url` or set health_url "
                    "for it in config/environments.yml",
                    field="url",
                )
            params = {**params, "url": resolved.health_url}
        if spec.command_param:
            argv = list(params[spec.command_param])
            verdict = self._policy.evaluate(
                argv, environment=resolved.environment, allows_shell=spec.allows_shell
            )
            if not verdict.allowed:
                return refuse(
                    f"command refused by rule '{verdict.rule_id}': {verdict.reason}",
                    rule_id=verdict.rule_id,
                    argv=argv,
                )
        return OperationCall(
            operation=spec.name,
            target=target,
            params=params,
            timeout_s=spec.budget_s(params),
            output_cap=self._output_cap,
        )

    @staticmethod
    def _executor_target(
        spec: OperationSpec, resolved: DockerTarget | SshTarget
    ) -> DockerTarget | SshTarget | HttpTarget | None:
        if resolved.kind in spec.executors:
            return resolved
        if "http" in spec.executors:
            # Probes go to the service's URL, not into its container or host.
            return HttpTarget(
                name=resolved.name,
                environment=resolved.environment,
                tags=resolved.tags,
                protected=resolved.protected,
            )
        return None


class _Refuser:
    """Builds refusals for one request, so each check only says what went wrong."""

    def __init__(self, *, operation: str, target: str, environment: str | None) -> None:
        self.operation = operation
        self.target = target
        self.environment = environment

    def within(self, environment: str) -> _Refuser:
        return _Refuser(operation=self.operation, target=self.target, environment=environment)

    def __call__(self, reason: str, **data: Any) -> Refusal:
        return Refusal(
            operation=self.operation,
            target=self.target,
            environment=self.environment,
            reason=reason,
            data=data,
        )
