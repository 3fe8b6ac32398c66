"""Running one plan step exactly once: the ledger row is written before the operation starts, a
finished row is reused (so evidence read before the gate is not read again at execution), and a
mutation the process died during is flagged `outcome_unknown`, never re-run."""

from __future__ import annotations

from typing import Any

from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from shared.lib.metrics import EXECUTIONS
from shared.lib.planning.models import Plan


async def execute_step(
    ctx: WorkflowContext,
    state: WorkflowState,
    index: int,
    earlier: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one step exactly once: the ledger row is written before the operation starts.
    A step with a condition on earlier results (`earlier`) that does not hold is recorded as
    skipped, with the reason, and not run."""
    step = Plan.model_validate(state["plan"]).steps[index]
    key = ledger_key(state, index)
    entry = await ctx.ledger.begin(
        key=key,
        workflow_id=state["workflow_id"],
        step=index,
        operation=step.operation,
        target=step.target,
        environment=step.environment,
        params=step.params,
        mutates=mutates(ctx, step.operation),
    )
    rerun_read = not entry.fresh and entry.status == "started" and not mutates(ctx, step.operation)
    if not entry.fresh and entry.status == "started" and not rerun_read:
        reason = "the process stopped while this operation ran; check the target by hand"
        await ctx.ledger.mark_outcome_unknown(key, reason=reason)
        return _unknown_outcome(step.operation, step.target, reason)
    if not entry.fresh and not rerun_read:
        return entry.result or _unknown_outcome(step.operation, step.target, entry.status)
    if step.when is not None and earlier is not None:
        before = earlier[step.when.step] if step.when.step < len(earlier) else None
        if not step.when.holds(before):
            ended = (before or {}).get("status", "not run")
            skipped = {
                "status": "skipped",
                "operation": step.operation,
                "target": step.target,
                "reason": f"condition not met: {step.when.describe()}, and it ended {ended}",
            }
            await ctx.ledger.skip(key, result=skipped)
            return skipped
    # A fresh row, or a read the process died during (reads are safe to run again).
    result = await ctx.runner.run(
        operation=step.operation,
        target=step.target,
        environment=step.environment,
        params=dict(step.params),
    )
    await ctx.ledger.finish(key, result)
    EXECUTIONS.labels(
        executor=result.invocation.kind, operation=step.operation, status=result.status.value
    ).inc()
    return result.model_dump(mode="json")


def ledger_key(state: WorkflowState, index: int) -> str:
    """The execution ledger's key of step `index` in this round."""
    return f"{state['workflow_id']}:{state.get('round', 1)}:{index}"


# What the graph's state keeps of a step's result: what routing, step conditions, rollback and
# the final status read. The output and the data stay in the execution ledger (and the workflow
# record its readers are shown), found by `ledger_key`: kept in the state, a 64 KB log read
# would be copied into the task's write and every checkpoint's blob after it.
_KEPT_IN_STATE = (
    "status", "operation", "target", "exit_code", "reason", "truncated", "duration_ms"
)  # fmt: skip


def in_state(result: dict[str, Any], key: str) -> dict[str, Any]:
    """A step's result as the graph's state holds it: `_KEPT_IN_STATE` and the ledger key."""
    return {**{name: result[name] for name in _KEPT_IN_STATE if name in result}, "ledger_key": key}


def mutates(ctx: WorkflowContext, operation: str) -> bool:
    try:
        return ctx.catalog.get(operation).mutates
    except LookupError:
        return True  # unknown means dangerous


def _unknown_outcome(operation: str, target: str, reason: str) -> dict[str, Any]:
    return {"status": "outcome_unknown", "operation": operation, "target": target, "reason": reason}
