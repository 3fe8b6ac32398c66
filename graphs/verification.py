"""After execution: check each changed target reached the state its operation promised."""

from __future__ import annotations

from typing import Any

from graphs.context import Runner
from shared.lib.planning.models import Plan

# Whether the target should be running after the operation; others are not verified.
EXPECTED_RUNNING = {
    "start": True,
    "restart": True,
    "service_restart": True,
    "stop": False,
}


async def verify_results(
    *, runner: Runner, plan: Plan, results: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for step, result in zip(plan.steps, results, strict=False):
        expected = EXPECTED_RUNNING.get(step.operation)
        if expected is None or result.get("status") != "ok":
            continue
        probe = await runner.run(
            operation="health", target=step.target, environment=step.environment, params={}
        )
        running = probe.data.get("running")
        healthy = probe.data.get("health") not in ("unhealthy",)
        passed = probe.ok and running is expected and (healthy or not expected)
        checks.append(
            {
                "operation": step.operation,
                "target": step.target,
                "check": "health",
                "passed": passed,
                "detail": f"{step.target}: running={running}, expected running={expected}"
                + (f", health={probe.data.get('health')}" if probe.data.get("health") else "")
                + (f" ({probe.reason})" if probe.reason else ""),
            }
        )
    return checks
