"""Approval endpoints. Decisions are recorded at once; the resume runs in the background."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import TypeAdapter

from agent_orchestrator.approvals.schemas import (
    ApprovalView,
    ApproveBody,
    ExpiryView,
    RejectBody,
)
from agent_orchestrator.deps import Approvals, Catalog, Config, CurrentPrincipal, Decisions
from agent_orchestrator.system.errors import AUTHENTICATED, WITH_BODY, responses
from agent_orchestrator.workflows.checks import check_steps
from shared.lib.approvals.listing import (
    MAX_OFFSET,
    ApprovalSummary,
    decode_cursor,
    encode_cursor,
)
from shared.lib.approvals.models import Decision
from shared.lib.approvals.service import DecisionView
from shared.lib.errors import ForbiddenError
from shared.lib.workflows.models import ensure_readable, lists_only_own

router = APIRouter(tags=["approvals"], responses=responses(*AUTHENTICATED))

RiskLevel = Annotated[str | None, Query(pattern="^(low|medium|high|critical)$")]
Role = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,64}$")]

_FULL = TypeAdapter(list[ApprovalView])


@router.get(
    "/approvals/pending",
    response_class=Response,
    responses={
        200: {
            "description": "One page, oldest first: full records, or with `view=summary` what "
            "a list shows. A full page carries `X-Next-Cursor` (and a `Link: rel=next`): "
            "pass it as `after` for the next page.",
            "model": list[ApprovalView] | list[ApprovalSummary],
        },
        422: {"description": "A bad filter, limit, offset or cursor; the message names it."},
    },
)
async def list_pending(
    principal: CurrentPrincipal,
    approvals: Approvals,
    request: Request,
    role: Role = None,
    risk_level: RiskLevel = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_OFFSET,
            description=f"Rows to skip (at most {MAX_OFFSET:,}; kept for older clients): "
            "page with `after` instead, which costs the same on every page.",
        ),
    ] = 0,
    after: Annotated[
        str | None,
        Query(
            max_length=200,
            description="The cursor from the previous page's `X-Next-Cursor` header: the "
            "page starts after it.",
        ),
    ] = None,
    view: Annotated[
        Literal["full", "summary"],
        Query(description="`full` (default): every field; `summary`: what a list shows."),
    ] = "full",
) -> Response:
    """Pending approvals, optionally only those a role may decide, or of one risk level; an
    operator sees only those of the work they asked for."""
    roles = {role} if role else None
    position = decode_cursor(after) if after is not None else None
    mine = lists_only_own(principal)
    body: str | bytes
    if view == "summary":
        body, count, last = await approvals.pending_summaries_json(
            roles=roles, risk_level=risk_level, limit=limit, offset=offset, after=position,
            requester=mine,
        )  # fmt: skip
    else:
        found = await approvals.list_pending(
            roles=roles, risk_level=risk_level, limit=limit, offset=offset, after=position,
            requester=mine,
        )  # fmt: skip
        body = _FULL.dump_json([ApprovalView.of(record) for record in found])
        count = len(found)
        last = (found[-1].created_at, found[-1].id) if found else None
    response = Response(content=body, media_type="application/json")
    if last is not None and count == limit:  # a full page: there may be more
        cursor = encode_cursor(*last)
        params = {**request.query_params, "after": cursor}
        params.pop("offset", None)
        response.headers["X-Next-Cursor"] = cursor
        response.headers["Link"] = f'<{request.url.path}?{urlencode(params)}>; rel="next"'
    return response


@router.get("/approvals/{approval_id}", responses=responses(403, 404))
async def get_approval(
    approval_id: UUID, principal: CurrentPrincipal, approvals: Approvals
) -> ApprovalView:
    """Everything an approver needs: plan, tier and rules, targets' state, rollback. An
    operator reads only the approvals of the work they asked for."""
    record = await approvals.get(approval_id)
    ensure_readable(principal, workflow_id=record.workflow_id, requester=record.requester)
    return ApprovalView.of(record)


@router.post(
    "/approve/{approval_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(*WITH_BODY, 403, 404, 409),
)
async def approve(
    approval_id: UUID,
    principal: CurrentPrincipal,
    decisions: Decisions,
    catalog: Catalog,
    config: Config,
    body: ApproveBody | None = None,
) -> DecisionView:
    """Approve (or, with `plan`, edit) a pending request."""
    body = body or ApproveBody()
    plan = body.plan
    if plan is not None:
        # No planner reads an edit again: its operations, parameters and targets are checked
        # here, and its steps written as the planner writes them (defaults filled in, each
        # target's environment named), so an edit that only leaves out a default is the plan
        # as it stands, and what is stored is what will run.
        steps = check_steps(
            catalog,
            plan.steps,
            at=lambda index: ("body", "plan", "steps", index),
            targets=config.targets,
        )
        plan = plan.model_copy(update={"steps": steps})
    decision: Decision = "edit" if plan is not None else "approve"
    return await decisions.decide(
        principal=principal,
        approval_id=approval_id,
        decision=decision,
        reason=body.reason,
        plan=plan,
        plan_hash=body.plan_hash,
    )


@router.post(
    "/reject/{approval_id}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(*WITH_BODY, 403, 404, 409),
)
async def reject(
    approval_id: UUID,
    body: RejectBody,
    principal: CurrentPrincipal,
    decisions: Decisions,
) -> DecisionView:
    """Reject a pending request; a reason is required."""
    return await decisions.decide(
        principal=principal, approval_id=approval_id, decision="reject", reason=body.reason
    )


@router.post("/approvals/expire", responses=responses(403))
async def expire_now(principal: CurrentPrincipal, decisions: Decisions) -> ExpiryView:
    """Resolve approvals past their TTL now (the sweeper does this on its own too)."""
    if not principal.has_any({"ops-lead", "admin"}):
        raise ForbiddenError(
            f"'{principal.name}' has roles {sorted(principal.roles)}; expiring approvals "
            "needs ops-lead or admin"
        )
    return ExpiryView(expired=await decisions.expire_due(actor=principal.name))
