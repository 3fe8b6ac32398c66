"""Start workflows, read them, and resume one whose run stopped."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

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
    WorkflowListItem,
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
        reason=body.reason,
    )
    return WorkflowView.of(await engine.start(work))


@router.get("/workflows")
async def my_workflows(
    principal: CurrentPrincipal,
    workflows: Workflows,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[WorkflowListItem]:
    """The caller's own most recent workflows, newest first."""
    records = await workflows.for_requester(principal.name, limit=limit)
    return [
        WorkflowListItem(**WorkflowView.of(r).model_dump(), created_at=r.created_at)
        for r in records
    ]


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
