"""What was approved is what runs: the state of each target a plan mutates is fingerprinted at the
approval's pause and read again once the decision is in, before the first mutation. The fields
that count are the catalog's (`drift` per mutating operation). A drifted target is not touched:
the run asks again in a new round that shows what changed, or, when the alert that started it has
resolved meanwhile, ends `withdrawn`."""

from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime

from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from shared.lib.catalog.models import Catalog
from shared.lib.planning.models import Plan
from shared.lib.workflows.models import WorkRequest


def target_key(environment: str | None, target: str) -> str:
    return f"{environment or '-'}/{target}"


def drift_fields(catalog: Catalog, plan: Plan) -> dict[str, set[str]]:
    """Per mutated target, the probe fields the catalog says an approval depends on."""
    fields: dict[str, set[str]] = {}
    for step in plan.steps:
        spec = catalog.operations.get(step.operation)
        if spec is None or not spec.drift:
            continue
        fields.setdefault(target_key(step.environment, step.target), set()).update(spec.drift)
    return fields


def fingerprint(
    catalog: Catalog, plan: Plan, targets: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The approval's view of each mutated target, from the probes shown to the approver: only
    the fields the probe reported (a Docker probe has no main PID, a unit no image)."""
    prints: dict[str, dict[str, Any]] = {}
    for key, fields in drift_fields(catalog, plan).items():
        state = (targets.get(key) or {}).get("state") or {}
        prints[key] = {name: state[name] for name in sorted(fields) if name in state}
    return prints


async def probe(ctx: WorkflowContext, environment: str | None, target: str) -> dict[str, Any]:
    result = await ctx.runner.run(
        operation="health", target=target, environment=environment, params={}
    )
    return {"status": result.status.value, "reason": result.reason, "state": result.data}


def changes(before: dict[str, Any], now: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"field": name, "before": value, "now": now.get(name)}
        for name, value in before.items()
        if now.get(name) != value
    ]


async def check_drift(state: WorkflowState, runtime: Runtime[WorkflowContext]) -> dict[str, Any]:
    """Between the approval and the first mutation: read the targets again. The gate runs it
    once an approval is in (one step, one checkpoint, for the decision and this read); a read
    only, so it is safe to run again when the gate's step is re-run after a crash."""
    ctx, workflow_id = runtime.context, state["workflow_id"]
    planned = Plan.model_validate(state["plan"])
    before = state.get("fingerprint") or {}
    targets = {
        target_key(s.environment, s.target): (s.environment, s.target) for s in planned.steps
    }
    drifted: dict[str, list[dict[str, Any]]] = {}
    for key, seen in before.items():
        if not seen or key not in targets:
            continue
        environment, target = targets[key]
        now = await probe(ctx, environment, target)
        changed = changes(seen, now["state"])
        if changed:
            drifted[key] = changed
    if not drifted:
        return {"drift": None}
    round_ = state.get("round", 1)
    request = WorkRequest.model_validate(state["request"])
    fingerprint_ = (request.alert or {}).get("fingerprint")
    if fingerprint_ and not await ctx.alert_firing(str(fingerprint_)):
        reason = (
            "the targets changed since the approval and the alert that asked for this has "
            "resolved; nothing was run"
        )
        await ctx.workflows.update(
            workflow_id, event="drifted", detail={"round": round_, "targets": drifted}
        )
        decision = {**(state.get("decision") or {}), "outcome": "withdrawn", "reason": reason}
        return {"drift": {"round": round_, "targets": drifted}, "decision": decision}
    await ctx.workflows.update(
        workflow_id,
        event="drifted",
        detail={"round": round_, "targets": drifted, "next_round": round_ + 1},
    )
    return {"drift": {"round": round_, "targets": drifted}, "round": round_ + 1}


def after_drift(state: WorkflowState) -> Literal["execute", "investigate", "report"]:
    """Where an approved run goes once its targets were read again."""
    if not state.get("drift"):
        return "execute"
    if (state.get("decision") or {}).get("outcome") == "withdrawn":
        return "report"
    return "investigate"
