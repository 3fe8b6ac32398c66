"""The text of a tracker issue: what happened, what was asked, the evidence, the plan and the
decisions, and where to look in the agent's inbox and at the source."""

from __future__ import annotations

import json
from typing import Any

from shared.lib.alerts.store import AlertRecord
from shared.lib.approvals.models import ApprovalRecord
from shared.lib.workflows.store import WorkflowRecord

_MAX_EVIDENCE_CHARS = 3000


def alert_title(record: AlertRecord) -> str:
    where = record.labels.get("service") or record.labels.get("repository") or record.target
    return f"[devops-agent] {record.alertname}" + (f" on {where}" if where else "")


def alert_body(record: AlertRecord, *, public_url: str) -> str:
    lines = [
        f"**{record.alertname}** from {record.source} was escalated to a human.",
        "",
        f"- Why: {record.reason or 'no reason recorded'}",
        f"- Fingerprint: `{record.fingerprint}`",
        f"- Started: {record.starts_at.isoformat()}",
        f"- Summary: {record.annotations.get('summary', '-')}",
        "",
        "**Labels**",
        *[f"- {name}: {value}" for name, value in sorted(record.labels.items())],
        "",
        "**Links**",
        *[f"- {name}: {url}" for name, url in sorted(record.links.items())],
        f"- alerts: {public_url}/alerts?status=firing",
    ]
    if record.workflow_id:
        lines.append(f"- workflow: {public_url}/inbox/workflows/{record.workflow_id}")
    return "\n".join(lines)


def workflow_title(workflow: WorkflowRecord, *, outcome: str) -> str:
    alert = workflow.request.get("alert") or {}
    about = alert.get("alertname") or (workflow.request.get("text") or "")[:60] or workflow.id
    return f"[devops-agent] workflow {outcome}: {about}"


def workflow_body(
    workflow: WorkflowRecord,
    approval: ApprovalRecord | None,
    *,
    outcome: str,
    public_url: str,
) -> str:
    request = workflow.request
    lines = [
        f"Workflow `{workflow.id}` ended **{outcome}**: {workflow.error or 'no error recorded'}",
        "",
        "**Request**",
        f"- From: {workflow.source} ({workflow.requester})",
    ]
    if request.get("text"):
        lines.append(f"- Asked: {request['text']}")
    if request.get("alert"):
        alert = request["alert"]
        lines.append(f"- Alert: {alert.get('alertname')} `{alert.get('fingerprint')}`")
    lines += ["", "**Plan**", *_steps(workflow.plan or [])]
    if workflow.risk:
        lines.append(f"- Risk: {workflow.risk.get('tier', '?')}")
    if approval is not None:
        lines += ["", "**Decisions**"]
        lines += [
            f"- {a.actor}: {a.action}" + (f" ({a.reason})" if a.reason else "")
            for a in approval.actions
        ] or ["- none yet"]
        evidence = approval.context.get("evidence")
        if evidence:
            lines += ["", "**Evidence**", "```", _clip(evidence), "```"]
    lines += ["", "**Results**", *_results(workflow.results)]
    lines += ["", "**Links**", f"- workflow: {public_url}/inbox/workflows/{workflow.id}"]
    if approval is not None:
        lines.append(f"- approval: {public_url}/inbox/approvals/{approval.id}")
    return "\n".join(lines)


def _steps(plan: list[dict[str, Any]]) -> list[str]:
    return [
        f"- {step.get('operation')} {step.get('target')} ({step.get('environment') or '-'})"
        for step in plan
    ] or ["- no plan"]


def _results(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"- {r.get('operation')} {r.get('target')}: {r.get('status')}"
        + (f" ({r['reason']})" if r.get("reason") else "")
        for r in results
    ] or ["- nothing ran"]


def _clip(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
    return text if len(text) <= _MAX_EVIDENCE_CHARS else text[:_MAX_EVIDENCE_CHARS] + "\n…"
