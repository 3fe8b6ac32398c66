"""Verification checks what each operation promises to leave behind (the catalog's `leaves`):
a successful stop verifies as stopped, on any executor."""

from __future__ import annotations

from typing import Any

import pytest

from graphs.verification import verify_results
from shared.lib.catalog import Catalog, load_catalog
from shared.lib.execution.models import ExecutionResult, ExecutionStatus, Invocation
from shared.lib.planning.models import Plan, PlannedOperation
from tests.helpers import CONFIG_DIR


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(config_dir=CONFIG_DIR)


class ProbeRunner:
    """Answers every `health` probe with one scripted result."""

    def __init__(self, status: ExecutionStatus, data: dict[str, Any]) -> None:
        self.status, self.data = status, data
        self.probes: list[str] = []

    async def run(
        self, *, operation: str, target: str, environment: str | None, params: dict[str, Any]
    ) -> ExecutionResult:
        self.probes.append(f"{operation}:{target}")
        return ExecutionResult(
            status=self.status,
            operation=operation,
            target=target,
            invocation=Invocation(kind="fake", endpoint="test", call=operation),
            data=self.data,
        )


def _plan(operation: str) -> Plan:
    return Plan(steps=[PlannedOperation(operation=operation, target="web", environment="dev")])


OK = [{"status": "ok"}]


@pytest.mark.parametrize(
    ("probe_status", "data"),
    [
        # Docker: a stopped container's health probe fails with running=False.
        (ExecutionStatus.FAILED, {"running": False, "healthy": False}),
        # A systemd unit over SSH reports `active`, not `running`.
        (ExecutionStatus.FAILED, {"active": False, "active_state": "inactive"}),
    ],
)
async def test_a_successful_stop_verifies_as_stopped(
    catalog: Catalog, probe_status: ExecutionStatus, data: dict[str, Any]
) -> None:
    runner = ProbeRunner(probe_status, data)
    checks = await verify_results(runner=runner, catalog=catalog, plan=_plan("stop"), results=OK)
    assert [check["passed"] for check in checks] == [True]
    assert runner.probes == ["health:web"]


async def test_a_stop_that_left_the_target_running_fails(catalog: Catalog) -> None:
    runner = ProbeRunner(ExecutionStatus.OK, {"running": True})
    checks = await verify_results(runner=runner, catalog=catalog, plan=_plan("stop"), results=OK)
    assert [check["passed"] for check in checks] == [False]


async def test_an_unreachable_target_never_verifies(catalog: Catalog) -> None:
    runner = ProbeRunner(ExecutionStatus.UNREACHABLE, {})
    for operation in ("stop", "restart"):
        checks = await verify_results(
            runner=runner, catalog=catalog, plan=_plan(operation), results=OK
        )
        assert [check["passed"] for check in checks] == [False]


@pytest.mark.parametrize(
    ("data", "passed"),
    [
        ({"running": True, "health": "healthy"}, True),
        ({"running": True, "health": "unhealthy"}, False),
        ({"active": True, "active_state": "active"}, True),
        ({"running": False}, False),
    ],
)
async def test_a_restart_must_leave_the_target_running_and_healthy(
    catalog: Catalog, data: dict[str, Any], passed: bool
) -> None:
    status = ExecutionStatus.OK if passed else ExecutionStatus.FAILED
    runner = ProbeRunner(status, data)
    checks = await verify_results(runner=runner, catalog=catalog, plan=_plan("restart"), results=OK)
    assert [check["passed"] for check in checks] == [passed]


async def test_reads_and_failed_steps_are_not_verified(catalog: Catalog) -> None:
    runner = ProbeRunner(ExecutionStatus.OK, {"running": True})
    logs = await verify_results(runner=runner, catalog=catalog, plan=_plan("logs"), results=OK)
    assert logs == []
    failed = [{"status": "failed"}]
    assert (
        await verify_results(runner=runner, catalog=catalog, plan=_plan("stop"), results=failed)
        == []
    )
    assert runner.probes == []
