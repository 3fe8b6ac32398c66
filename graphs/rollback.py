"""The rollback gate: when verification fails after a mutation, the workflow does not just end.
It proposes the inverse of what ran (the catalog's `inverse`, last step first), planned through
the same funnel as any request's steps, as a new round through the same assessment, lease,
evidence and gate; the approver approves it, edits it, or rejects it, which closes the workflow
`failed` with the reason. An operation without an inverse is named; when nothing that ran can
be undone, or the funnel refuses the rollback, the workflow ends `failed` and says a person
must look (the failure notification is the escalation)."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from graphs.steps import mutates
from shared.lib.planning.errors import PlanningError
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.workflows.models import WorkRequest


def needs_rollback(state: WorkflowState) -> bool:
    """Verification failed after a mutation that succeeded, and this is not a rollback already."""
    if state.get("rollback"):
        return False
    failed = [c for c in state.get("verification", []) if not c["passed"]]
    ran = [r for r in state.get("results", []) if r.get("status") == "ok"]
    return bool(failed and ran)


def after_verify(state: WorkflowState) -> Literal["propose_rollback", "report"]:
    return "propose_rollback" if needs_rollback(state) else "report"


async def propose_rollback(
    state: WorkflowState, runtime: Runtime[WorkflowContext]
) -> dict[str, Any]:
    ctx, workflow_id = runtime.context, state["workflow_id"]
    planned = Plan.model_validate(state["plan"])
    inverse: list[PlannedOperation] = []
    missing: list[str] = []
    for step, result in reversed(list(zip(planned.steps, state["results"], strict=False))):
        if result.get("status") != "ok" or not mutates(ctx, step.operation):
            continue
        spec = ctx.catalog.operations.get(step.operation)
        if spec is None or spec.inverse is None:
            missing.append(f"{step.operation} on {step.target}")
            continue
        inverse.append(
            PlannedOperation(
                operation=spec.inverse, target=step.target, environment=step.environment
            )
        )
    failed = [c["detail"] for c in state.get("verification", []) if not c["passed"]]
    rollback: dict[str, Any] = {
        "of_plan_hash": planned.hash,
        "verification_failed": failed,
        "no_inverse": missing,
        "operations": [op.model_dump(mode="json") for op in inverse],
    }
    if not inverse:
        await ctx.workflows.update(workflow_id, event="rollback_impossible", detail=rollback)
        return {"rollback": {**rollback, "escalated": True}}
    try:
        rollback_plan = await _planned(ctx, state, inverse, flags=planned)
    except PlanningError as refused:  # the funnel refuses what the config no longer allows
        rollback = {**rollback, "refused": str(refused), "escalated": True}
        await ctx.workflows.update(workflow_id, event="rollback_refused", detail=rollback)
        return {"rollback": rollback}
    await ctx.workflows.update(
        workflow_id,
        plan=rollback_plan.normalized(),
        event="rollback_proposed",
        detail=rollback,
    )
    return {
        "rollback": rollback,
        "plan": rollback_plan.model_dump(mode="json"),
        "round": state.get("round", 1) + 1,
        "decision": None,
        "results_before_rollback": state.get("results", []),
        "results": [],
        "verification": [],
    }


async def _planned(
    ctx: WorkflowContext, state: WorkflowState, inverse: list[PlannedOperation], *, flags: Plan
) -> Plan:
    """The inverse steps planned like any request's steps: the catalog's parameters and the
    safety funnel (the agent itself, protected targets) apply to a rollback too."""
    original = WorkRequest.model_validate(state["request"])
    request = WorkRequest(source=original.source, requester=original.requester, steps=inverse)
    plan = await ctx.planner.plan(request)
    return plan.model_copy(update={"flags": flags.flags})  # the request's flags stay with it


def after_proposal(state: WorkflowState) -> Literal["assess_risk", "report"]:
    rollback = state.get("rollback") or {}
    return "report" if rollback.get("escalated") else "assess_risk"


def rollback_status(state: WorkflowState) -> tuple[str, str | None] | None:
    """The final status of a workflow that went through the rollback gate, or None."""
    rollback = state.get("rollback")
    if not rollback:
        return None
    why = "; ".join(rollback["verification_failed"]) or "verification failed"
    if rollback.get("refused"):
        return "failed", (
            f"verification failed ({why}); the rollback was refused ({rollback['refused']}): "
            "a person must look"
        )
    if rollback.get("escalated"):
        return "failed", (
            f"verification failed ({why}); nothing that ran has an inverse "
            f"({', '.join(rollback['no_inverse'])}): a person must look"
        )
    decision = state.get("decision") or {}
    if decision.get("outcome") in ("rejected", "expired", "withdrawn"):
        reason = decision.get("reason") or decision["outcome"]
        return "failed", f"verification failed ({why}); rollback not run: {reason}"
    failed = [r for r in state.get("results", []) if r["status"] not in ("ok", "skipped")]
    unhealthy = [c for c in state.get("verification", []) if not c["passed"]]
    if failed or unhealthy or not state.get("results"):
        return "failed", f"verification failed ({why}); the rollback did not finish cleanly"
    note = f"verification failed ({why}); rolled back"
    if rollback["no_inverse"]:
        note += f" except {', '.join(rollback['no_inverse'])} (no inverse)"
    return "rolled_back", note
