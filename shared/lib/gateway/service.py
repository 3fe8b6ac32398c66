"""Carry out a gateway request as a workflow: the same planner, funnel, risk policy and gate as
POST /orchestrate, then answer in the gateway's words (see docs/gateway.md)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from shared.lib.gateway.models import (
    ExecutionDetails,
    GatewayExecutionResult,
    GatewayRequest,
    GatewayResponse,
    OverallStatus,
    ResultStatus,
)
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.models import WorkRequest
from shared.lib.workflows.store import WorkflowRecord

# How long the call waits for a read-only answer before saying IN_PROGRESS.
ANSWER_WAIT_S = 30.0

STATUS_BY_WORKFLOW: dict[str, OverallStatus] = {
    "awaiting_approval": "PENDING_APPROVAL",
    "planning": "IN_PROGRESS",
    "running": "IN_PROGRESS",
    "rejected": "REJECTED",
    "expired": "EXPIRED",
    "withdrawn": "WITHDRAWN",
}

RESULT_STATUS: dict[str, ResultStatus] = {
    "ok": "SUCCESS",
    "failed": "FAILURE",
    "timeout": "TIMEOUT",
    "refused": "REFUSED",
    "unreachable": "UNREACHABLE",
    "outcome_unknown": "FAILURE",
}


def work_request(body: GatewayRequest, *, requester: str, request_id: str) -> WorkRequest:
    """The intent, naming the target, as plain text for the planner; the caller's context
    rides along for the planner and the approver."""
    name, intent = body.target_resource.name, body.action_request.intent.strip()
    text = intent if re.search(rf"\b{re.escape(name)}\b", intent) else f"{intent} {name}"
    environment = body.target_resource.environment or body.context.get("environment")
    return WorkRequest(
        source="gateway",
        requester=requester,
        text=text,
        environment=str(environment) if environment else None,
        request_id=request_id,
        context={
            "source_id": body.source_id,
            "priority": body.priority,
            "context": body.context,
        },
    )


async def execute(
    *,
    engine: WorkflowEngine,
    body: GatewayRequest,
    requester: str,
    request_id: str,
    public_url: str,
    wait_s: float = ANSWER_WAIT_S,
) -> GatewayResponse:
    started = await engine.start(work_request(body, requester=requester, request_id=request_id))
    record = await engine.settle(started.id, timeout_s=wait_s)
    return response(record, request_id=request_id, public_url=public_url)


def response(record: WorkflowRecord, *, request_id: str, public_url: str) -> GatewayResponse:
    pending = record.status == "awaiting_approval" and record.approval_id is not None
    return GatewayResponse(
        request_id=request_id,
        timestamp_processed_utc=datetime.now(UTC),
        overall_status=overall_status(record),
        workflow_id=record.id,
        approval_id=record.approval_id if pending else None,
        approval_url=f"{public_url}/inbox/approvals/{record.approval_id}" if pending else None,
        message=record.error or _message(record),
        execution_details=_details(record),
        execution_result=_result(record.results),
    )


def overall_status(record: WorkflowRecord) -> OverallStatus:
    if record.status == "completed":
        return "COMPLETED_SUCCESS"
    if record.status == "failed":
        return "COMPLETED_FAILURE" if record.results else "FAILED"
    return STATUS_BY_WORKFLOW.get(record.status, "IN_PROGRESS")


def _message(record: WorkflowRecord) -> str | None:
    if record.status == "awaiting_approval":
        return (
            "a person must approve this first (approval_url); "
            f"poll GET /workflows/{record.id} for the outcome"
        )
    if record.status in ("planning", "running"):
        return f"still {record.status}; poll GET /workflows/{record.id} for the outcome"
    return None


def _details(record: WorkflowRecord) -> ExecutionDetails | None:
    if not record.plan:
        return None
    calls = [r["invocation"]["call"] for r in record.results if r.get("invocation")]
    planned = [
        f"{s['operation']} {s['target']} ({s.get('environment') or '-'})" for s in record.plan
    ]
    return ExecutionDetails(
        command="; ".join(calls or planned),
        operations=record.plan,
        risk_tier=(record.risk or {}).get("tier"),
    )


def _result(results: list[dict[str, Any]]) -> GatewayExecutionResult | None:
    if not results:
        return None
    failed = next((r for r in results if r["status"] != "ok"), None)
    deciding = failed or results[-1]
    return GatewayExecutionResult(
        status=RESULT_STATUS.get(deciding["status"], "FAILURE"),
        exit_code=deciding.get("exit_code"),
        stdout="\n".join(r.get("stdout", "") for r in results if r.get("stdout")),
        stderr="\n".join(r.get("stderr", "") for r in results if r.get("stderr")),
    )
