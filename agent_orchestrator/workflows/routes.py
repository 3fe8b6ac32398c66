"""Start workflows, read them, and resume one whose run stopped."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, status

from agent_orchestrator.approvals.schemas import ApprovalView
from agent_orchestrator.deps import (
    Approvals,
    Catalog,
    CurrentPrincipal,
    Decisions,
    Engine,
    Ledger,
    Workflows,
)
from agent_orchestrator.system.errors import AUTHENTICATED, WITH_BODY, responses
from agent_orchestrator.workflows.checks import check_steps
from agent_orchestrator.workflows.schemas import (
    OrchestrateRequest,
    ResumeView,
    WorkflowDetail,
    WorkflowId,
    WorkflowListItem,
    WorkflowView,
)
from shared.lib.workflows.models import WorkRequest, ensure_readable

router = APIRouter(tags=["workflows"], responses=responses(*AUTHENTICATED))

MAX_WAIT_S = 60.0  # a long poll holds a request at most this long


@router.post("/orchestrate", status_code=status.HTTP_201_CREATED, responses=responses(*WITH_BODY))
async def orchestrate(
    body: OrchestrateRequest,
    principal: CurrentPrincipal,
    engine: Engine,
    catalog: Catalog,
    request: Request,
) -> WorkflowView:
    """Start a workflow from plain text or structured operations."""
    steps = body.structured_steps()
    if steps is not None:
        check_steps(catalog, steps, at=body.location_of_step)
    work = WorkRequest(
        source="api",
        requester=principal.name,
        text=body.request,
        steps=steps,
        environment=body.environment,
        request_id=request.state.request_id,
        reason=body.reason,
    )
    return WorkflowView.of(await engine.start(work))


@router.get("/workflows", responses=responses(422))
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


@router.get("/workflows/{workflow_id}", responses=responses(403, 404, 422))
async def get_workflow(
    workflow_id: WorkflowId,
    principal: CurrentPrincipal,
    workflows: Workflows,
    approvals: Approvals,
    ledger: Ledger,
    engine: Engine,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_S,
            description="Long poll: hold the answer up to this many seconds until the "
            "workflow ends or waits for approvers (0, the default, answers at once). Woken "
            "at once by a change, so there is no need to poll.",
        ),
    ] = 0,
    answered: Annotated[
        UUID | None,
        Query(
            description="With `wait`: an approval you already decided; a pause on it does "
            "not end the wait (use it to wait for the run your decision resumed)."
        ),
    ] = None,
) -> WorkflowDetail:
    """Status, plan, risk with reasons, approvals and decisions, results and a timeline.

    With `wait=S` the request is a long poll: it answers once the workflow is completed,
    failed, rejected, expired or withdrawn, or awaits a decision (other than `answered`), or
    after S seconds with the workflow as it then is."""
    if wait > 0:  # the engine checks the reader on its first read, before it waits
        record = await engine.settle(
            workflow_id, timeout_s=wait, answered=answered, reader=principal
        )
    else:
        record = await workflows.get(workflow_id)
        ensure_readable(principal, workflow_id=workflow_id, requester=record.requester)
    view = WorkflowView.of(record)
    return WorkflowDetail(
        **view.model_dump(),
        source=record.source,
        requester=record.requester,
        request=record.request,
        pending_approval_id=view.approval_id,
        approvals=[ApprovalView.of(found) for found in await approvals.for_workflow(workflow_id)],
        results=record.results,
        verification=record.verification,
        executions=await ledger.for_workflow(workflow_id),
        timeline=await workflows.timeline(workflow_id),
        created_at=record.created_at,
        finished_at=record.finished_at,
    )


@router.post(
    "/resume/{workflow_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(403, 404, 409),
)
async def resume(
    workflow_id: WorkflowId,
    principal: CurrentPrincipal,
    decisions: Decisions,
    workflows: Workflows,
) -> ResumeView:
    """Continue a workflow whose approval is settled but whose run stopped; idempotent. An
    operator resumes only the work they asked for."""
    record = await workflows.get(workflow_id)
    ensure_readable(principal, workflow_id=workflow_id, requester=record.requester)
    return ResumeView(workflow_id=workflow_id, outcome=await decisions.resume_workflow(workflow_id))
