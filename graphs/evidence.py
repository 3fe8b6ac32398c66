"""Investigate first: the read-only steps that come before a plan's first mutation run before
the gate, so the approver decides with the logs, health and stats the plan was written to
gather. They run through the same ledger rows as execution (the execute node reuses them, never
reads twice) and within a time budget; what the approver is shown is truncated, the ledger
keeps the whole result."""

from __future__ import annotations

import time
from typing import Any

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
    return {"evidence": evidence}


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
