"""Investigate first: the read-only steps that come before a plan's first mutation run before
the gate, so the approver decides with the logs, health and stats the plan was written to
gather. They run through the same ledger rows as execution (the execute node reuses them, never
reads twice) and within a time budget; what the approver is shown is truncated, the ledger
keeps the whole result. When those reads make every change's condition fail ("restart only
if health failed", and it is healthy), nobody is asked: the plan runs its reads and records the
changes skipped."""

from __future__ import annotations

import time
from typing import Any, Literal

from langgraph.runtime import Runtime

from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from graphs.steps import execute_step, mutates
from shared.lib.planning.models import Plan

# How long the reads before the gate may take together; later reads wait for execution.
INVESTIGATION_BUDGET_S = 60.0
# How much of each read's output the approval shows (the ledger keeps the whole result).
EVIDENCE_OUTPUT_CHARS = 4000


def evidence_steps(ctx: WorkflowContext, plan: Plan) -> list[int]:
    """Indexes of the reads before the first mutation: what executing would read first anyway.
    Reads after a mutation describe the changed target, so they wait for execution."""
    indexes = []
    for index, step in enumerate(plan.steps):
        if mutates(ctx, step.operation):
            break
        indexes.append(index)
    return indexes


async def investigate(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    ctx, workflow_id = runtime.context, state["workflow_id"]
    planned = Plan.model_validate(state["plan"])
    deadline = time.monotonic() + INVESTIGATION_BUDGET_S
    evidence: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []  # by step index: what a step's condition looks back at
    for index in evidence_steps(ctx, planned):
        step = planned.steps[index]
        if time.monotonic() >= deadline:
            evidence.append(_skipped(index, step.operation, step.target))
            results.append({"status": "not_run"})
            continue
        result = await execute_step(ctx, state, index, results)
        results.append(result)
        evidence.append(_shown(index, result))
    if evidence:
        await ctx.workflows.update(
            workflow_id,
            event="investigated",
            detail={
                "steps": [e["step"] for e in evidence],
                "status": [e["status"] for e in evidence],
            },
        )
    ruled_out = changes_ruled_out(ctx, planned, results)
    if ruled_out:
        await ctx.workflows.update(
            workflow_id,
            event="approval_not_needed",
            detail={"skipped": ruled_out, "reason": "what was read rules out every change"},
        )
    return {"evidence": evidence, "changes_ruled_out": bool(ruled_out)}


def after_investigation(state: WorkflowState) -> Literal["request_approval", "execute"]:
    """Nobody is asked to approve changes that what was read already rules out."""
    return "execute" if state.get("changes_ruled_out") else "request_approval"


def changes_ruled_out(
    ctx: WorkflowContext, plan: Plan, read: list[dict[str, Any]]
) -> list[int] | None:
    """The mutating steps, when the reads already done (`read`, by step index) make every one's
    condition fail; None when any change could still run. Execution then records them skipped
    through the same conditions, from the same ledger rows."""
    # A read the budget left for later has no outcome yet: a condition on it is undecided.
    known = {index: result for index, result in enumerate(read) if result["status"] != "not_run"}
    skipped: list[int] = []
    for index, step in enumerate(plan.steps):
        if index in known or not mutates(ctx, step.operation):
            continue
        condition = step.when
        if condition is None or condition.step not in known:
            return None
        if condition.holds(known[condition.step]):
            return None
        known[index] = {"status": "skipped"}
        skipped.append(index)
    return skipped or None


def _shown(index: int, result: dict[str, Any]) -> dict[str, Any]:
    output = str(result.get("stdout") or "")
    return {
        "step": index,
        "operation": result.get("operation"),
        "target": result.get("target"),
        "status": result.get("status"),
        "reason": result.get("reason"),
        "output": output[-EVIDENCE_OUTPUT_CHARS:],
        "truncated": bool(result.get("truncated")) or len(output) > EVIDENCE_OUTPUT_CHARS,
        "data": result.get("data") or {},
    }


def _skipped(index: int, operation: str, target: str) -> dict[str, Any]:
    return {
        "step": index,
        "operation": operation,
        "target": target,
        "status": "skipped",
        "reason": f"investigation budget of {INVESTIGATION_BUDGET_S:.0f} s spent; it runs "
        "after approval",
        "output": "",
        "truncated": False,
        "data": {},
    }
