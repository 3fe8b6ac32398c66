"""After execution: check each changed target is in the state its operation promises to leave
it in (the catalog's `leaves`: running or stopped); operations that promise nothing are not
verified."""

from __future__ import annotations

from typing import Any

from graphs.context import Runner
from shared.lib.catalog.models import Catalog
from shared.lib.execution.models import ExecutionResult
from shared.lib.planning.models import Plan, PlannedOperation


async def verify_results(
    *, runner: Runner, catalog: Catalog, plan: Plan, results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for step, result in zip(plan.steps, results, strict=False):
        spec = catalog.operations.get(step.operation)
        if spec is None or spec.leaves is None or result.get("status") != "ok":
            continue
        probe = await runner.run(
            operation="health", target=step.target, environment=step.environment, params={}
        )
        checks.append(_check(step, expected_running=spec.leaves == "running", probe=probe))
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
