"""Start workflows, read them, and resume one whose run stopped."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from agent_orchestrator.deps import (
    Approvals,
    CurrentPrincipal,
    Decisions,
    Engine,
    Ledger,
    Workflows,
)
from agent_orchestrator.workflows.schemas import (
    OrchestrateRequest,
    ResumeView,
    WorkflowDetail,
    WorkflowView,
)
from shared.lib.workflows.models import WorkRequest

router = APIRouter(tags=["workflows"])


@router.post("/orchestrate", status_code=status.HTTP_201_CREATED)
async def orchestrate(
    body: OrchestrateRequest, principal: CurrentPrincipal, engine: Engine, request: Request
) -> WorkflowView:
    """Start a workflow from plain text or structured operations."""
    work = WorkRequest(
        source="api",
        requester=principal.name,
        text=body.request,
        steps=body.structured_steps(),
        environment=body.environment,
        request_id=request.state.request_id,
    )
    return WorkflowView.of(await engine.start(work))


@router.get("/workflows/{workflow_id}")
async def get_workflow(
    workflow_id: str,
    principal: CurrentPrincipal,
    workflows: Workflows,
    approvals: Approvals,
    ledger: Ledger,
) -> WorkflowDetail:
    """Status, plan, risk with reasons, approvals and decisions, results and a timeline."""
    record = await workflows.get(workflow_id)
    view = WorkflowView.of(record)
    return WorkflowDetail(
        **view.model_dump(),
        source=record.source,
        requester=record.requester,
        request=record.request,
        pending_approval_id=view.approval_id,
        approvals=await approvals.for_workflow(workflow_id),
        results=record.results,
        verification=record.verification,
        executions=await ledger.for_workflow(workflow_id),
        timeline=await workflows.timeline(workflow_id),
        created_at=record.created_at,
        finished_at=record.finished_at,
    )


@router.post("/resume/{task_id}", status_code=status.HTTP_202_ACCEPTED)
async def resume(task_id: str, principal: CurrentPrincipal, decisions: Decisions) -> ResumeView:
    """Continue a workflow whose approval is settled but whose run stopped; idempotent."""
    return ResumeView(workflow_id=task_id, outcome=await decisions.resume_workflow(task_id))
