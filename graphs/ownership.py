"""One owner per target, in the graph: a plan that mutates takes its targets' leases before it
investigates or asks anyone (reads need none). Merged into a workflow already asking for the
same operation (one that runs it at least as surely: `covers`), it ends `merged`; wanting
another operation, it waits at `wait_for_target` (an interrupt and nothing else) until the
engine resumes it on the lease's release, and is then re-assessed from its risk on. An alert's
recovery whose alerts have all resolved takes nothing and stops waiting: it ends `withdrawn`
(graphs/withdrawal.py)."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from graphs.steps import mutates
from graphs.withdrawal import alert_withdrawal, withdrawn
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.workflows.leases import lease_text
from shared.lib.workflows.models import WorkRequest


def mutated_targets(ctx: WorkflowContext, plan: Plan) -> dict[tuple[str, str], str]:
    """(environment, target) -> the operations the plan runs on it, as its lease records them
    (`operations_text`: each with its parameters' digest, conditional ones marked)."""
    steps: dict[tuple[str, str], list[PlannedOperation]] = {}
    for step in plan.steps:
        if mutates(ctx, step.operation):
            steps.setdefault((step.environment or "-", step.target), []).append(step)
    return {key: lease_text(on_target) for key, on_target in steps.items()}


async def claim_targets(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    ctx, workflow_id = runtime.context, state["workflow_id"]
    targets = mutated_targets(ctx, Plan.model_validate(state["plan"]))
    if targets:  # about to change something, or to ask for it: not for an alert that cleared
        withdrawal = await alert_withdrawal(ctx, state, when="before anything was changed")
        if withdrawal is not None:
            return {"claim": None, "decision": withdrawal}
    if ctx.leases is None or not targets:
        return {"claim": {"outcome": "owned"}}
    request = WorkRequest.model_validate(state["request"])
    claim = await ctx.leases.claim(
        workflow_id=workflow_id,
        requester=request.requester,
        source=request.source,
        targets=targets,
    )
    shown = {"outcome": claim.outcome, "owner": claim.owner, "target": claim.target}
    if claim.outcome == "wait":
        await ctx.workflows.update(
            workflow_id,
            status="waiting_for_target",
            event="waiting_for_target",
            detail={"owner": claim.owner, "target": claim.target},
        )
        await ctx.on_status(workflow_id, "waiting_for_target")
    return {"claim": shown}


def after_claim(state: WorkflowState) -> Literal["execute", "investigate", "report", "wait"]:
    outcome = (state.get("claim") or {}).get("outcome")
    if outcome == "merged" or withdrawn(state):
        return "report"
    if outcome == "wait":
        return "wait"
    return "execute" if state.get("auto_approved") else "investigate"


async def wait_for_target(
    state: WorkflowState, runtime: Runtime[WorkflowContext]
) -> dict[str, Any]:
    """The second pause: until the target's owner ends. Resumed by the engine, nothing else:
    with the owner's release (assessed again from the risk on), or with a withdrawal (the alert
    behind the request resolved while it waited: it ends `withdrawn` without asking anyone).
    A release finds the alerts' resolution too when the withdrawal itself was lost (its
    process died, or the thread's lock was busy past the resume's wait)."""
    claim = state.get("claim") or {}
    answer = interrupt(
        {
            "workflow_id": state["workflow_id"],
            "waiting_for_target": claim.get("owner"),
            "target": claim.get("target"),
        }
    )
    if isinstance(answer, dict) and answer.get("withdrawn"):
        return {"claim": None, "decision": {"outcome": "withdrawn", "reason": answer["withdrawn"]}}
    when = "while its recovery waited for the target"
    withdrawal = await alert_withdrawal(runtime.context, state, when=when)
    if withdrawal is not None:
        return {"claim": None, "decision": withdrawal}
    return {"claim": None}


def after_wait(state: WorkflowState) -> Literal["assess_risk", "report"]:
    return "report" if withdrawn(state) else "assess_risk"


async def release_targets(ctx: WorkflowContext, workflow_id: str, status: str) -> None:
    """At the end: free the leases and tell every merged request how it went, in one
    transaction and once (the sweeper does the same for a run killed before it got here)."""
    if ctx.leases is None:
        return
    await ctx.leases.finish(workflow_id, status)
