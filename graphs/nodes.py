"""The workflow's nodes. Only `gate` pauses, and it does nothing else: LangGraph re-runs an
interrupted node from its first line on resume, so side effects live in the other nodes and are
idempotent (deterministic approval ids, ledger keys)."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from graphs.context import WorkflowContext
from graphs.drift import check_drift, fingerprint
from graphs.inbox import gate_decision, gate_interrupt
from graphs.ownership import release_targets
from graphs.rollback import rollback_status
from graphs.state import WorkflowState
from graphs.steps import execute_step, in_state, ledger_key
from graphs.verification import verify_results
from graphs.withdrawal import alert_withdrawal, withdraw_approval
from shared.lib.approvals.models import GateDecision
from shared.lib.execution.models import ExecutionResult
from shared.lib.metrics import APPROVAL_REQUESTS
from shared.lib.planning.errors import PlanningError, PlanOutcome
from shared.lib.planning.models import Plan
from shared.lib.risk.models import RiskAssessment
from shared.lib.workflows.models import WorkRequest

APPROVAL_NAMESPACE = uuid.UUID("5b0c7e52-4d0e-4a55-9f5e-0f3c1a8d2b61")


async def intake(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    request = WorkRequest.model_validate(state["request"])
    return {"request": request.model_dump(mode="json"), "round": 1, "results": []}


async def plan(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    ctx, workflow_id = runtime.context, state["workflow_id"]
    request = WorkRequest.model_validate(state["request"])
    try:
        planned = await ctx.planner.plan(request)
    except PlanningError as unplannable:  # a question back or a refusal: nothing will run
        outcome = PlanOutcome.from_error(unplannable).model_dump(mode="json")
        event = "planning_refused" if outcome["status"] == "rejected" else "needs_clarification"
        await ctx.workflows.update(workflow_id, outcome=outcome, event=event, detail=outcome)
        return {"plan": None, "planning_error": str(unplannable), "planning_outcome": outcome}
    except Exception as error:  # a plan that cannot be made is an outcome, not a crash
        message = str(error)
        await ctx.workflows.update(workflow_id, event="planning_failed", detail={"error": message})
        return {"plan": None, "planning_error": message}
    await ctx.workflows.update(
        workflow_id,
        plan=planned.normalized(),
        event="planned",
        detail={"steps": len(planned.steps)},
    )
    return {"plan": planned.model_dump(mode="json"), "planning_error": None}


async def assess_risk(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    ctx, workflow_id = runtime.context, state["workflow_id"]
    planned = Plan.model_validate(state["plan"])
    assessment = await ctx.assessor.assess(planned, history=ctx.ledger)
    requirement = ctx.approval_rules.requirement(assessment.tier)
    risk = {**assessment.model_dump(mode="json"), "reasons": assessment.reasons}
    await ctx.workflows.update(
        workflow_id,
        risk=risk,
        event="assessed",
        detail={"tier": assessment.tier.value, "auto": requirement.auto},
    )
    return {"assessment": risk, "auto_approved": requirement.auto}


async def request_approval(
    state: WorkflowState, runtime: Runtime[WorkflowContext]
) -> dict[str, Any]:
    ctx, workflow_id, round_ = runtime.context, state["workflow_id"], state.get("round", 1)
    planned = Plan.model_validate(state["plan"])
    assessment = RiskAssessment.model_validate(state["assessment"])
    requirement = ctx.approval_rules.requirement(assessment.tier)
    approval_id = uuid.uuid5(APPROVAL_NAMESPACE, f"{workflow_id}:{round_}:{planned.hash}")
    cleared = await _cleared(ctx, state, approval_id)  # nobody is asked for a cleared alert
    if cleared is not None:
        return cleared
    request = WorkRequest.model_validate(state["request"])
    context = {
        **await _decision_context(ctx, planned),
        "plan_authors": _plan_authors(state),
        "evidence": state.get("evidence", []),
        "request_flags": [flag.model_dump(mode="json") for flag in planned.flags],
        "summary": planned.summary,
    }
    if request.reason:
        context["request_reason"] = request.reason  # the requester's why, for the approver
    if request.context:
        context["request_context"] = request.context  # what the caller said, for the approver
    if state.get("rollback"):
        context["rollback_of"] = state["rollback"]  # why this round undoes the last one
    drift = state.get("drift")
    if drift and drift.get("round") == round_ - 1:
        context["drift"] = drift  # what changed since the last round was approved
    record, created = await ctx.approvals.create(
        approval_id=approval_id,
        workflow_id=workflow_id,
        risk_level=assessment.tier.value,
        required_approvals=requirement.approvals,
        allowed_roles=sorted(requirement.roles),
        requester=request.requester,
        plan=planned,
        assessment=state["assessment"] or {},
        context=context,
        ttl_s=requirement.ttl_s,
        timeout_outcome=requirement.on_timeout,
        round_=round_,
    )
    if created:
        APPROVAL_REQUESTS.labels(risk_level=assessment.tier.value).inc()
    # The workflow says `awaiting_approval` only once the gate's pause is in the checkpoint:
    # the engine reports the pause (see WorkflowEngine.on_pause), not this node.
    if ctx.leases is not None:  # with the requests merged into this one before it asked
        await ctx.leases.name_approval(workflow_id, approval_id)
    else:
        await ctx.workflows.update(workflow_id, approval_id=approval_id)
    seen = fingerprint(ctx.catalog, planned, context["targets"])
    # Resolved while this was being made: either this read sees it, or the webhook saw the
    # approval named above and withdraws it (AlertService); no approval outlives its alert.
    cleared = await _cleared(ctx, state, record.id)
    if cleared is not None:
        return {**cleared, "approval_id": str(record.id), "fingerprint": seen}
    return {"approval_id": str(record.id), "fingerprint": seen}


async def gate(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """The pause. Resumed with a GateDecision by /approve, /reject, the sweeper or a withdrawal.
    An approval reads the targets again before anything runs (check_drift): in this step, so
    the decision and that read cost one checkpoint."""
    answer = interrupt(gate_interrupt(dict(state)))
    decision = gate_decision(answer, approval_id=str(state.get("approval_id")))
    update: dict[str, Any] = {"decision": decision.model_dump(mode="json")}
    if decision.outcome == "approved":
        update |= await check_drift({**state, **update}, runtime)  # type: ignore[typeddict-item]
    return update


async def apply_edit(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    decision = GateDecision.model_validate(state["decision"])
    assert decision.plan is not None
    # The request's flags belong to the request: an edited plan keeps them (and its tier).
    before = Plan.model_validate(state["plan"]).flags
    edited = decision.plan.model_copy(
        update={"flags": [*before, *(f for f in decision.plan.flags if f not in before)]}
    )
    await runtime.context.workflows.update(
        state["workflow_id"],
        plan=decision.plan.normalized(),
        event="plan_edited",
        detail={"by": decision.decided_by, "plan_hash": decision.plan.hash},
    )
    authors = sorted({*state.get("plan_authors", []), *decision.decided_by})
    return {
        "plan": edited.model_dump(mode="json"),
        "round": state.get("round", 1) + 1,
        "plan_authors": authors,
    }


async def execute(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    ctx, workflow_id = runtime.context, state["workflow_id"]
    await ctx.workflows.update(workflow_id, status="running", event="executing")
    await ctx.on_status(workflow_id, "running")
    planned = Plan.model_validate(state["plan"])
    results: list[dict[str, Any]] = []
    for index, step in enumerate(planned.steps):
        result = await execute_step(ctx, state, index, results)
        results.append(result)
        await ctx.workflows.update(
            workflow_id,
            results=results,
            event="step_finished",
            detail={
                "step": index,
                "operation": step.operation,
                "target": step.target,
                "status": result["status"],
            },
        )
        if result["status"] not in ("ok", "skipped") and index not in _handled(planned):
            break  # a failure stops the plan, unless a later step's condition looks at it
    # The record above has each step's output; the state names the ledger row that holds it.
    return {"results": [in_state(r, ledger_key(state, i)) for i, r in enumerate(results)]}


async def verify(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    ctx, workflow_id = runtime.context, state["workflow_id"]
    checks = await verify_results(
        runner=ctx.runner,
        catalog=ctx.catalog,
        plan=Plan.model_validate(state["plan"]),
        results=state["results"],
        targets=ctx.targets,
    )
    await ctx.workflows.update(
        workflow_id,
        verification=checks,
        event="verified",
        detail={"passed": all(check["passed"] for check in checks)},
    )
    return {"verification": checks}


async def report(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    ctx, workflow_id = runtime.context, state["workflow_id"]
    status, error = final_status(state)
    record = await ctx.workflows.update(
        workflow_id,
        status=status,
        error=error,
        event=status,
        detail={"error": error} if error else {},
        returning=True,
    )
    await release_targets(ctx, workflow_id, status)
    await ctx.on_status(workflow_id, status, record)
    return {"status": status, "error": error}


def final_status(state: WorkflowState) -> tuple[str, str | None]:
    outcome = state.get("planning_outcome")
    if outcome and outcome["status"] == "rejected":
        return "rejected", f"refused by rule {outcome['rule']}: {outcome['reason']}"
    if outcome and outcome["status"] == "needs_clarification":
        return "needs_clarification", outcome["question"]
    if state.get("planning_error"):
        return "failed", f"could not plan: {state['planning_error']}"
    rolled = rollback_status(state)
    if rolled is not None:
        return rolled
    claim = state.get("claim") or {}
    if claim.get("outcome") == "merged":
        return "merged", (
            f"merged into workflow {claim['owner']}, which already asks for the same operation "
            f"on {claim['target']}; its outcome is this request's"
        )
    decision = state.get("decision")
    if decision and decision["outcome"] in ("rejected", "expired", "withdrawn"):
        return decision["outcome"], decision.get("reason")
    handled = _handled(Plan.model_validate(state["plan"])) if state.get("plan") else set()
    failed = [
        r
        for index, r in enumerate(state.get("results", []))
        if r["status"] not in ("ok", "skipped") and index not in handled
    ]
    if failed:
        first = failed[0]
        return "failed", f"{first['operation']} on {first['target']}: {first['status']}" + (
            f" ({first['reason']})" if first.get("reason") else ""
        )
    unhealthy = [c for c in state.get("verification", []) if not c["passed"]]
    if unhealthy:
        return "failed", f"verification failed: {unhealthy[0]['detail']}"
    return "completed", None


async def _decision_context(ctx: WorkflowContext, planned: Plan) -> dict[str, Any]:
    """What an approver needs besides the plan: targets' current state and how to roll back."""
    targets: dict[str, Any] = {}
    for step in planned.steps:
        name = f"{step.environment or '-'}/{step.target}"
        if name in targets:
            continue
        probe = await ctx.runner.run(
            operation="health", target=step.target, environment=step.environment, params={}
        )
        targets[name] = _state_summary(probe)
    inverse = []
    for step in planned.steps:
        spec = ctx.catalog.operations.get(step.operation)
        inverse.append(
            {
                "operation": step.operation,
                "target": step.target,
                "inverse": spec.inverse if spec else None,
            }
        )
    return {"targets": targets, "rollback": inverse}


async def _cleared(
    ctx: WorkflowContext, state: WorkflowState, approval_id: uuid.UUID
) -> dict[str, Any] | None:
    """The alerts that asked for this have all resolved: its approval (if one was made) is
    withdrawn and the run ends `withdrawn` (after_request)."""
    decision = await alert_withdrawal(ctx, state, when="before anyone was asked to approve")
    if decision is None:
        return None
    await withdraw_approval(ctx, approval_id, decision["reason"])
    return {"decision": decision}


def _handled(planned: Plan) -> set[int]:
    """Steps a later step's condition looks at: their failure is an answer, not the end."""
    return {step.when.step for step in planned.steps if step.when is not None}


def _plan_authors(state: WorkflowState) -> list[str]:
    """Everyone who edited any round of the plan shaped it, and may approve no later round."""
    return list(state.get("plan_authors", []))


def _state_summary(result: ExecutionResult) -> dict[str, Any]:
    return {"status": result.status.value, "reason": result.reason, "state": result.data}
