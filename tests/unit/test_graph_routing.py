"""The graph's decisions without the graph: where each routing function sends a state, what
status a finished state reports, and what verification makes of the executed steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graphs.evidence import after_investigation, changes_ruled_out
from graphs.nodes import final_status
from graphs.state import WorkflowState
from graphs.verification import verify_results
from graphs.workflow import after_assessment, after_gate, after_plan
from shared.lib.catalog import load_catalog
from shared.lib.commands import load_command_policy
from shared.lib.execution.models import ExecutionResult, ExecutionStatus, Invocation
from shared.lib.execution.runner import OperationRunner
from shared.lib.executors.fake import FakeExecutor
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.targets import load_targets
from tests.helpers import CONFIG_DIR, FIXTURES

CATALOG = load_catalog(config_dir=CONFIG_DIR)


def _decided(outcome: str, reason: str | None = None) -> WorkflowState:
    return {"decision": {"outcome": outcome, "reason": reason, "decided_by": ["bob"]}}


def _result(operation: str, target: str, status: str, reason: str | None = None) -> dict[str, Any]:
    return {"operation": operation, "target": target, "status": status, "reason": reason}


# --- routing ---------------------------------------------------------------------------------


def test_after_plan_reports_a_planning_error_and_assesses_a_plan() -> None:
    assert after_plan({"planning_error": "no such operation 'reboot'"}) == "report"
    assert after_plan({"planning_error": None, "plan": {"steps": []}}) == "assess_risk"
    assert after_plan({}) == "assess_risk"


def test_after_assessment_runs_only_what_needs_no_approval() -> None:
    assert after_assessment({"auto_approved": True}) == "execute"
    assert after_assessment({"auto_approved": False}) == "investigate"
    assert after_assessment({}) == "investigate"  # unknown means ask


@pytest.mark.parametrize(
    ("state", "route"),
    [
        (_decided("approved"), "execute"),
        ({**_decided("approved"), "drift": {"round": 1, "targets": {}}}, "investigate"),
        ({**_decided("withdrawn"), "drift": {"round": 1, "targets": {}}}, "report"),
        (_decided("edited"), "apply_edit"),
        (_decided("rejected", "not now"), "report"),
        (_decided("expired"), "report"),
        (_decided("withdrawn"), "report"),
        ({"decision": None}, "report"),
        ({}, "report"),
    ],
    ids=[
        "approved",
        "approved-drifted",
        "drifted-alert-resolved",
        "edited",
        "rejected",
        "expired",
        "withdrawn",
        "none",
        "missing",
    ],
)
def test_after_gate_executes_only_an_approval(state: WorkflowState, route: str) -> None:
    assert after_gate(state) == route


# --- final status ----------------------------------------------------------------------------


def test_a_planning_error_fails_the_workflow_whatever_else_the_state_holds() -> None:
    state: WorkflowState = {
        "planning_error": "unknown target 'web2'",
        "results": [_result("restart", "web", "ok")],
        **_decided("approved"),
    }
    assert final_status(state) == ("failed", "could not plan: unknown target 'web2'")


@pytest.mark.parametrize("outcome", ["rejected", "expired", "withdrawn"])
def test_a_decision_that_stops_the_work_is_the_status(outcome: str) -> None:
    state: WorkflowState = {**_decided(outcome, "the alert resolved"), "results": []}
    assert final_status(state) == (outcome, "the alert resolved")


def test_the_first_failed_step_names_operation_target_status_and_reason() -> None:
    state: WorkflowState = {
        **_decided("approved"),
        "results": [
            _result("logs", "web", "ok"),
            _result("restart", "web", "unreachable", "web does not answer"),
            _result("health", "web", "refused", "later step"),
        ],
    }
    assert final_status(state) == ("failed", "restart on web: unreachable (web does not answer)")


def test_a_step_with_an_unknown_outcome_fails_without_a_reason_suffix() -> None:
    state: WorkflowState = {"results": [_result("restart", "api", "outcome_unknown")]}
    assert final_status(state) == ("failed", "restart on api: outcome_unknown")


def test_a_failed_verification_fails_a_run_whose_steps_all_succeeded() -> None:
    state: WorkflowState = {
        "results": [_result("restart", "web", "ok")],
        "verification": [
            {"passed": True, "detail": "api: fine"},
            {"passed": False, "detail": "web: running=False, expected running=True"},
        ],
    }
    assert final_status(state) == (
        "failed",
        "verification failed: web: running=False, expected running=True",
    )


def test_steps_and_checks_that_all_passed_complete_the_workflow() -> None:
    state: WorkflowState = {
        **_decided("approved"),
        "results": [_result("restart", "web", "ok")],
        "verification": [{"passed": True, "detail": "web: running=True"}],
    }
    assert final_status(state) == ("completed", None)
    assert final_status({}) == ("completed", None)


# --- verification ----------------------------------------------------------------------------


@pytest.fixture
def docker() -> FakeExecutor:
    return FakeExecutor(kind="docker")


@pytest.fixture
def runner(docker: FakeExecutor) -> OperationRunner:
    targets = load_targets(config_dir=FIXTURES, path=Path("environments.yml"), environ={})
    return OperationRunner(
        catalog=load_catalog(config_dir=CONFIG_DIR),
        targets=targets,
        policy=load_command_policy(config_dir=CONFIG_DIR),
        executors={"docker": docker, "ssh": FakeExecutor(kind="ssh")},
    )


def _plan(*steps: tuple[str, str]) -> Plan:
    return Plan(
        steps=[
            PlannedOperation(operation=op, target=target, environment="dev") for op, target in steps
        ]
    )


async def test_a_restarted_running_target_passes_its_health_check(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    checks = await verify_results(
        catalog=CATALOG,
        runner=runner,
        plan=_plan(("restart", "web")),
        results=[_result("restart", "web", "ok")],
    )
    assert [(c["target"], c["check"], c["passed"]) for c in checks] == [("web", "health", True)]
    assert [(call.operation, call.target.name) for call in docker.calls] == [("health", "web")]


async def test_a_restarted_target_that_is_unhealthy_fails_and_says_why(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    docker.target("web").healthy = False
    checks = await verify_results(
        catalog=CATALOG,
        runner=runner,
        plan=_plan(("restart", "web")),
        results=[_result("restart", "web", "ok")],
    )
    assert [c["passed"] for c in checks] == [False]
    assert checks[0]["detail"] == ("web: running=True, expected running=True (web is unhealthy)")


async def test_an_unreachable_target_fails_verification(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    docker.unreachable.add("api")
    checks = await verify_results(
        catalog=CATALOG,
        runner=runner,
        plan=_plan(("start", "api")),
        results=[_result("start", "api", "ok")],
    )
    assert [c["passed"] for c in checks] == [False]
    assert "api does not answer" in checks[0]["detail"]


async def test_only_state_changing_steps_that_succeeded_are_checked(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    plan = _plan(("logs", "web"), ("restart", "web"), ("restart", "api"))
    results = [
        _result("logs", "web", "ok"),
        _result("restart", "web", "ok"),
        _result("restart", "api", "failed", "no such container"),
    ]
    checks = await verify_results(catalog=CATALOG, runner=runner, plan=plan, results=results)
    assert [(c["operation"], c["target"]) for c in checks] == [("restart", "web")]
    assert len(docker.calls) == 1


async def test_steps_that_never_ran_are_not_checked(runner: OperationRunner) -> None:
    plan = _plan(("restart", "web"), ("restart", "api"))
    checks = await verify_results(
        catalog=CATALOG, runner=runner, plan=plan, results=[_result("restart", "web", "ok")]
    )
    assert [c["target"] for c in checks] == ["web"]


class DockerLikeRunner:
    """Answers `health` the way the Docker executor does: ok, with the container's state."""

    def __init__(self, *, running: bool, health: str | None = None) -> None:
        self.data: dict[str, Any] = {"running": running, "health": health}

    async def run(
        self, *, operation: str, target: str, environment: str | None, params: dict[str, Any]
    ) -> ExecutionResult:
        return ExecutionResult(
            status=ExecutionStatus.OK,
            operation=operation,
            target=target,
            invocation=Invocation(kind="docker-api", endpoint="test", call=f"{operation} {target}"),
            data=self.data,
        )


async def test_a_stop_passes_when_the_target_is_no_longer_running() -> None:
    stopped = await verify_results(
        catalog=CATALOG,
        runner=DockerLikeRunner(running=False),
        plan=_plan(("stop", "web")),
        results=[_result("stop", "web", "ok")],
    )
    still_up = await verify_results(
        catalog=CATALOG,
        runner=DockerLikeRunner(running=True),
        plan=_plan(("stop", "web")),
        results=[_result("stop", "web", "ok")],
    )
    assert [c["passed"] for c in stopped] == [True]
    assert [c["passed"] for c in still_up] == [False]
    assert still_up[0]["detail"] == "web: running=True, expected running=False"


async def test_a_running_target_docker_reports_unhealthy_fails() -> None:
    checks = await verify_results(
        catalog=CATALOG,
        runner=DockerLikeRunner(running=True, health="unhealthy"),
        plan=_plan(("restart", "web")),
        results=[_result("restart", "web", "ok")],
    )
    assert [c["passed"] for c in checks] == [False]
    assert checks[0]["detail"] == "web: running=True, expected running=True, health=unhealthy"


# --- changes ruled out before the gate -------------------------------------------------------


class _Catalogued:
    """What `changes_ruled_out` reads of the workflow's context: the catalog."""

    catalog = CATALOG


def _conditional(*steps: tuple[str, int | None]) -> Plan:
    return Plan(
        steps=[
            PlannedOperation(
                operation=operation,
                target="web",
                environment="prod",
                when=None if on is None else {"step": on, "status": "failed"},
            )
            for operation, on in steps
        ]
    )


@pytest.mark.parametrize(
    ("steps", "read", "ruled_out"),
    [
        # health ok: the restart's condition fails, so nobody need be asked
        ((("health", None), ("restart", 0), ("health", None)), ["ok"], [1]),
        # health failed: the restart may run, ask
        ((("health", None), ("restart", 0)), ["failed"], None),
        # a restart without a condition always needs the gate
        ((("health", None), ("restart", None)), ["ok"], None),
        # a condition on a read not yet run (it comes after a change) is unknown: ask
        ((("stop", None), ("health", None), ("start", 1)), [], None),
        # a change that depends on a ruled-out change is ruled out with it
        ((("health", None), ("stop", 0), ("start", 1)), ["ok"], [1, 2]),
        # a skipped read did not fail: the restart's condition fails with it
        ((("health", None), ("restart", 0)), ["skipped"], [1]),
        # reads only: nothing to rule out, the normal path decides
        ((("health", None), ("logs", None)), ["ok", "ok"], None),
    ],
)
def test_changes_are_ruled_out_only_when_the_reads_already_decide_every_one(
    steps: tuple[tuple[str, int | None], ...], read: list[str], ruled_out: list[int] | None
) -> None:
    results = [{"status": status} for status in read]
    plan = _conditional(*steps)
    assert changes_ruled_out(_Catalogued(), plan, results) == ruled_out  # type: ignore[arg-type]
    state: WorkflowState = {"changes_ruled_out": bool(ruled_out)}
    assert after_investigation(state) == ("execute" if ruled_out else "request_approval")


def test_a_read_left_for_later_decides_no_condition() -> None:
    """The investigation budget can leave a read for execution: whatever the condition on it
    asks, its outcome is unknown before the gate, so the gate is not skipped."""
    for status in ("ok", "failed"):
        plan = Plan(
            steps=[
                PlannedOperation(operation="health", target="web", environment="prod"),
                PlannedOperation(
                    operation="restart",
                    target="web",
                    environment="prod",
                    when={"step": 0, "status": status},
                ),
            ]
        )
        ruled_out = changes_ruled_out(_Catalogued(), plan, [{"status": "not_run"}])  # type: ignore[arg-type]
        assert ruled_out is None, status
