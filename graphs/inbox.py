"""The gate's interrupt in the Agent Inbox's shape (action_request, config, description), and
its answer read either as the service's GateDecision or as an Agent Inbox HumanResponse."""

from __future__ import annotations

from typing import Any

from shared.lib.approvals.models import GateDecision

# Who decided, when the answer came from the Agent Inbox (LangGraph Server has no principals).
INBOX_DECIDER = "agent-inbox"


def gate_interrupt(state: dict[str, Any]) -> dict[str, Any]:
    """What a paused run shows: the ids the service needs and what the Agent Inbox renders."""
    plan = state.get("plan") or {}
    assessment = state.get("assessment") or {}
    steps = plan.get("steps", [])
    lines = [
        f"- `{s['operation']}` on **{s['target']}** ({s.get('environment') or '-'})"
        f"{' ' + str(s['params']) if s.get('params') else ''}"
        + (f" (only if step {s['when']['step']} {s['when']['status']})" if s.get("when") else "")
        for s in steps
    ]
    reasons = [f"- {reason}" for reason in assessment.get("reasons", [])]
    description = "\n".join(
        [
            f"**Approval needed** (risk: {assessment.get('tier', '?')})",
            "",
            *lines,
            "",
            "Why:",
            *reasons,
            "",
            "Accept to run it; ignore to reject; respond to reject with a reason.",
        ]
    )
    return {
        "approval_id": state.get("approval_id"),
        "workflow_id": state["workflow_id"],
        "action_request": {
            "action": "approve_plan",
            "args": {"steps": steps, "risk": assessment.get("tier"), "plan_hash": plan.get("hash")},
        },
        "config": {
            "allow_accept": True,
            "allow_ignore": True,
            "allow_respond": True,
            "allow_edit": False,  # edits go through the service's API, which re-assesses them
        },
        "description": description,
    }


def gate_decision(answer: Any, *, approval_id: str) -> GateDecision:
    """A GateDecision (the service's resume) or an Agent Inbox HumanResponse (or a list of
    them, as the Agent Inbox sends) turned into one."""
    if isinstance(answer, GateDecision):
        return answer
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if isinstance(answer, dict) and "outcome" in answer:
        return GateDecision.model_validate(answer)
    if isinstance(answer, dict) and answer.get("type") in ("accept", "ignore", "response"):
        kind = answer["type"]
        args = answer.get("args")
        reason = args if isinstance(args, str) and args else None
        return GateDecision(
            approval_id=approval_id,
            outcome="approved" if kind == "accept" else "rejected",
            decided_by=[INBOX_DECIDER],
            reason=reason or ("ignored in the Agent Inbox" if kind == "ignore" else None),
        )
    raise ValueError(
        f"cannot read the gate's answer {answer!r}: resume with a GateDecision "
        '({"approval_id", "outcome", ...}) or an Agent Inbox response '
        '([{"type": "accept" | "ignore" | "response", "args": ...}])'
    )
