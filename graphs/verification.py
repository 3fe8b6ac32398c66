"""After execution: check each changed target is in the state its operation promises to leave
it in (the catalog's `leaves`: running or stopped), and that each changed service's
`verify_url` (the service as its users reach it) still answers 200. Reads are not verified."""

from __future__ import annotations

from typing import Any

from graphs.context import Runner
from shared.lib.catalog.models import Catalog
from shared.lib.execution.models import ExecutionResult
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.targets import TargetResolver


async def verify_results(
    *,
    runner: Runner,
    catalog: Catalog,
    plan: Plan,
    results: list[dict[str, Any]],
    targets: TargetResolver | None = None,
) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    changed: list[PlannedOperation] = []
    for step, result in zip(plan.steps, results, strict=False):
        spec = catalog.operations.get(step.operation)
        if spec is None or not spec.mutates or result.get("status") != "ok":
            continue
        changed.append(step)
        if spec.leaves is None:
            continue
        probe = await runner.run(
            operation="health", target=step.target, environment=step.environment, params={}
        )
        checks.append(_check(step, expected_running=spec.leaves == "running", probe=probe))
    if targets is not None:
        checks.extend(await _verify_urls(runner, targets, changed))
    return checks


def _check(
    step: PlannedOperation, *, expected_running: bool, probe: ExecutionResult
) -> dict[str, Any]:
    # Docker reports `running`; a systemd unit over SSH reports `active`.
    running = probe.data.get("running", probe.data.get("active"))
    health = probe.data.get("health")
    if expected_running:
        # A running target must also answer its health probe.
        passed = probe.ok and running is True and health != "unhealthy"
    else:
        # A stopped target fails its health probe by design; what counts is that the probe
        # reached it and saw it stopped (an unreachable target proves nothing).
        passed = running is False
    return {
        "operation": step.operation,
        "target": step.target,
        "check": "health",
        "passed": passed,
        "detail": f"{step.target}: running={running}, expected running={expected_running}"
        + (f", health={health}" if health else "")
        + (f" ({probe.reason})" if probe.reason else ""),
    }


async def _verify_urls(
    runner: Runner, targets: TargetResolver, changed: list[PlannedOperation]
) -> list[dict[str, Any]]:
    """One check per changed service that names a `verify_url`, after all its steps ran."""
    checks: list[dict[str, Any]] = []
    seen: set[tuple[str | None, str]] = set()
    for step in changed:
        if (step.environment, step.target) in seen:
            continue
        seen.add((step.environment, step.target))
        url = targets.resolve(step.target, step.environment).verify_url
        if url is None:
            continue
        probe = await runner.run(
            operation="http_check",
            target=step.target,
            environment=step.environment,
            params={"url": url},
        )
        answer = probe.data.get("status_code")
        checks.append(
            {
                "operation": step.operation,
                "target": step.target,
                "check": "verify_url",
                "passed": probe.ok,
                "detail": f"{step.target}: {url} answered {answer or probe.status.value}"
                + (f" ({probe.reason})" if probe.reason else ""),
            }
        )
    return checks
