"""The inbox's pages: sign-in, Pending (live over SSE), Approval, Workflow, History."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, get_args
from uuid import UUID

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sse_starlette.sse import EventSourceResponse

from agent_orchestrator.deps import Approvals, Config, Inbox, Ledger, Refusals, Workflows
from agent_orchestrator.inbox.web import SignedIn, render, session_principal, templates
from agent_orchestrator.workflows.schemas import WorkflowId
from shared.lib.approvals.eligibility import why_cannot_decide
from shared.lib.approvals.models import ApprovalRecord, Decision
from shared.lib.approvals.shown import shown_approval
from shared.lib.errors import NotFoundError
from shared.lib.inbox.edits import param_field
from shared.lib.inbox.store import InboxRow, ListFilters
from shared.lib.principals import Principal
from shared.lib.safe_input import SafeText
from shared.lib.workflows.models import ensure_readable, lists_only_own

router = APIRouter(prefix="/inbox", include_in_schema=False)
log = logging.getLogger(__name__)

LIVE_POLL_S = 1.0
"""How often the live Pending feed re-reads the list (any replica's changes show up)."""

Tier = Query(pattern="^(low|medium|high|critical)?$")


async def list_filters(
    tier: Annotated[str | None, Tier] = None,
    environment: Annotated[SafeText | None, Query(max_length=64)] = None,
    source: Annotated[SafeText | None, Query(max_length=128)] = None,
    status: Annotated[
        str | None, Query(pattern="^(approved|rejected|expired|withdrawn|superseded)?$")
    ] = None,
) -> ListFilters:
    return ListFilters(
        tier=tier or None,
        environment=environment or None,
        source=source or None,
        status=status or None,
    )


Filters = Annotated[ListFilters, Depends(list_filters)]


@router.get("")
async def sign_in_page(request: Request, next: str = "/inbox/pending") -> Response:
    if request.session.get("principal"):
        return RedirectResponse("/inbox/pending", status_code=303)
    return render(request, "login.html", next=_local(next))


@router.get("/pending")
async def pending_page(
    request: Request, principal: SignedIn, inbox: Inbox, filters: Filters
) -> Response:
    rows = await inbox.pending(filters, requester=lists_only_own(principal))
    query = request.url.query
    return render(
        request, "pending.html", principal=principal, rows=rows, filters=filters, query=query
    )


@router.get("/events")
async def pending_events(
    request: Request, principal: SignedIn, inbox: Inbox, filters: Filters
) -> EventSourceResponse:
    """Server-Sent Events: the Pending rows again whenever the list changed. The session is
    asked again before each read: the stream ends at sign-out (or when the principal is
    removed), and when the database goes away (the page's EventSource reconnects later)."""

    async def changes() -> AsyncIterator[dict[str, Any]]:
        last: list[tuple[str, int, str]] | None = None
        try:
            while not await request.is_disconnected():
                reader = await session_principal(request)
                if reader is None:
                    ended = "live pending feed ended: signed out"
                    log.info(ended, extra={"principal": principal.name})
                    return
                rows = await inbox.pending(filters, requester=lists_only_own(reader))
                current = [(str(r.id), r.approvals_received, r.status) for r in rows]
                if current != last:
                    last = current
                    yield {"event": "pending", "data": _rows_html(request, rows)}
                await asyncio.sleep(LIVE_POLL_S)
        except psycopg.OperationalError as error:  # PoolTimeout included
            ended = "live pending feed ended: database unavailable"
            log.warning(ended, extra={"error": str(error)})

    return EventSourceResponse(changes(), ping=15)


@router.get("/approvals/{approval_id}")
async def approval_page(
    request: Request, approval_id: UUID, principal: SignedIn, approvals: Approvals, config: Config
) -> Response:
    return await approval_view(request, approval_id, principal, approvals, config)


async def approval_view(
    request: Request,
    approval_id: UUID,
    principal: Principal,
    approvals: Approvals,
    config: Config,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """The approval page; decisions that fail re-render it with the reason (same status)."""
    record = readable_approval(await approvals.get(approval_id), principal)
    shown = shown_approval(record)
    later = [a for a in await approvals.for_workflow(record.workflow_id) if a.round > record.round]
    params = {
        step.index: [
            (name, param_field(step.index, name), spec, step.params.get(name))
            for name, spec in (_spec_params(config, step.operation)).items()
        ]
        for step in shown.steps
    }
    return render(
        request,
        "approval.html",
        principal=principal,
        status_code=status_code,
        record=record,
        shown=shown,
        why_not=why_cannot_decide(record, principal),
        later=later,
        params=params,
        error=error,
    )


@router.get("/approvals/{approval_id}/shown/{action_index}")
async def shown_again(
    request: Request,
    approval_id: UUID,
    action_index: int,
    principal: SignedIn,
    approvals: Approvals,
) -> Response:
    """Decision replay: the approval as the decider of audit row `action_index` saw it."""
    record = readable_approval(await approvals.get(approval_id), principal)
    if not 0 <= action_index < len(record.actions):
        raise NotFoundError(
            f"approval '{approval_id}' has {len(record.actions)} audit rows; pick one listed "
            f"on /inbox/workflows/{record.workflow_id}"
        )
    action = record.actions[action_index]
    if action.action not in get_args(Decision) or not isinstance(action.details.get("shown"), dict):
        raise NotFoundError(
            f"audit row {action_index} of approval '{approval_id}' ({action.action} by "
            f"{action.actor}): this row records no decision, so there is no view to replay; "
            f"use a 'view as shown' link on /inbox/workflows/{record.workflow_id}"
        )
    shown = shown_approval(record)
    recorded = (action.details.get("shown") or {}).get("hash")
    return render(
        request,
        "replay.html",
        principal=principal,
        record=record,
        action=action,
        shown=shown,
        recorded=recorded,
        matches=recorded == shown.hash,
    )


@router.get("/workflows/{workflow_id}")
async def workflow_page(
    request: Request,
    workflow_id: WorkflowId,
    principal: SignedIn,
    workflows: Workflows,
    approvals: Approvals,
    refusals: Refusals,
    ledger: Ledger,
) -> Response:
    workflow = await workflows.get(workflow_id)
    ensure_readable(principal, workflow_id=workflow_id, requester=workflow.requester)
    rounds = await approvals.for_workflow(workflow_id)
    return render(
        request,
        "workflow.html",
        principal=principal,
        workflow=workflow,
        timeline=await workflows.timeline(workflow_id),
        executions=await ledger.for_workflow(workflow_id),
        rounds=rounds,
        refusals={r.id: await refusals.for_approval(r.id) for r in rounds},
    )


@router.get("/workflows/{workflow_id}/status")
async def workflow_status(
    request: Request, workflow_id: WorkflowId, principal: SignedIn, workflows: Workflows
) -> Response:
    """The status badge, polled by the workflow page until the workflow ends."""
    workflow = await workflows.get(workflow_id)
    ensure_readable(principal, workflow_id=workflow_id, requester=workflow.requester)
    return render(request, "_workflow_status.html", principal=principal, workflow=workflow)


@router.get("/history")
async def history_page(
    request: Request, principal: SignedIn, inbox: Inbox, filters: Filters
) -> Response:
    mine = lists_only_own(principal)
    return render(
        request,
        "history.html",
        principal=principal,
        rows=await inbox.decided(filters, requester=mine),
        # The figures count everyone's approvals: only for those who may read them all.
        statistics=await inbox.statistics() if mine is None else None,
        filters=filters,
    )


def readable_approval(record: ApprovalRecord, principal: Principal) -> ApprovalRecord:
    """The approval, if `principal` may read it: the REST rule of GET /approvals/{id}."""
    ensure_readable(principal, workflow_id=record.workflow_id, requester=record.requester)
    return record


def _rows_html(request: Request, rows: list[InboxRow]) -> str:
    template = templates.get_template("_pending_rows.html")
    return template.render(request=request, rows=rows, now=_now())


def _now() -> datetime:
    return datetime.now(UTC)


def _spec_params(config: Config, operation: str) -> dict[str, Any]:
    spec = config.catalog.operations.get(operation)
    return dict(spec.params) if spec else {}


def _local(path: str) -> str:
    """Only paths inside the inbox are followed after sign-in (no open redirect)."""
    return path if path.startswith("/inbox") and not path.startswith("//") else "/inbox/pending"
