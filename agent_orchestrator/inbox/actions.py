"""The inbox's forms: sign in, sign out, approve, reject (reason required), edit. Every form
carries the session's CSRF token; every decision goes through `ApprovalService.decide`."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from agent_orchestrator.deps import Approvals, Config, Decisions, Inbox, Settings
from agent_orchestrator.inbox.pages import approval_view, readable_approval
from agent_orchestrator.inbox.web import CheckedForm, SignedIn, flash, render
from agent_orchestrator.system.gate import client_of, throttled_detail, wrong_key_throttle
from shared.lib.approvals.models import Decision
from shared.lib.errors import DomainError
from shared.lib.inbox.edits import edited_plan
from shared.lib.inbox.session import new_csrf_token
from shared.lib.metrics import AUTH_FAILURES
from shared.lib.planning.models import Plan
from shared.lib.principals import Principal

router = APIRouter(prefix="/inbox", include_in_schema=False)


@router.post("/login")
async def sign_in(
    request: Request, form: CheckedForm, config: Config, settings: Settings, inbox: Inbox
) -> Response:
    """Wrong keys count in the gate's throttle of this address, as on every other way of
    presenting a key: past the limit the form answers 429 with Retry-After, a right key too."""
    next_path = form.get("next", "/inbox/pending")
    throttle, client = wrong_key_throttle(request.app), client_of(request.scope)
    retry_after = await throttle.retry_after(client)
    if retry_after is not None:
        AUTH_FAILURES.labels(credential="api_key", outcome="throttled").inc()
        refused = render(
            request,
            "login.html",
            status_code=429,
            next=next_path,
            error=throttled_detail(client, retry_after),
        )
        refused.headers["Retry-After"] = str(retry_after)
        return refused
    key = form.get("api_key", "")
    principal = config.principals.authenticate(key) if key else None
    if principal is None:
        if key:  # as at the gate, only a wrong key counts, not a missing one
            await throttle.failed(client)
            AUTH_FAILURES.labels(credential="api_key", outcome="rejected").inc()
        return render(
            request,
            "login.html",
            status_code=401,
            next=next_path,
            error="unknown API key; use the key listed for you in config/hitl/principals.yml "
            "(ask an admin for one)",
        )
    request.session.clear()  # a fresh session: no fixation across sign-ins
    session_id = await inbox.sign_in(principal.name, max_age_s=settings.session_max_age_s)
    request.session.update(
        {"principal": principal.name, "csrf": new_csrf_token(), "sid": session_id}
    )
    local = next_path.startswith("/inbox") and not next_path.startswith("//")
    return RedirectResponse(next_path if local else "/inbox/pending", status_code=303)


@router.post("/logout")
async def sign_out(request: Request, form: CheckedForm, inbox: Inbox) -> Response:
    """Ends the session on the server too: a copy of the cookie no longer signs anyone in."""
    session_id = request.session.get("sid")
    if isinstance(session_id, str):
        await inbox.sign_out(session_id)
    request.session.clear()
    return RedirectResponse("/inbox", status_code=303)


@router.post("/approvals/{approval_id}/{decision}")
async def decide(
    request: Request,
    approval_id: UUID,
    decision: Decision,
    principal: SignedIn,
    form: CheckedForm,
    decisions: Decisions,
    approvals: Approvals,
    config: Config,
) -> Response:
    """Approve, reject (a reason is required) or edit, through the one decision service."""
    return await _decide(
        request, approval_id, principal, form, decisions, approvals, config, decision
    )


async def _decide(
    request: Request,
    approval_id: UUID,
    principal: Principal,
    form: dict[str, str],
    decisions: Decisions,
    approvals: Approvals,
    config: Config,
    decision: Decision,
) -> Response:
    reason = form.get("reason", "").strip() or None
    try:
        plan: Plan | None = None
        if decision == "edit":
            record = readable_approval(await approvals.get(approval_id), principal)
            plan = edited_plan(record.plan, config.catalog, form)
        view = await decisions.decide(
            principal=principal,
            approval_id=approval_id,
            decision=decision,
            reason=reason,
            plan=plan,
            shown_hash=form.get("shown_hash") or None,
            channel="inbox",
        )
    except DomainError as refused:
        return await approval_view(
            request,
            approval_id,
            principal,
            approvals,
            config,
            error=str(refused),
            status_code=refused.status_code,
        )
    if decision == "edit":
        flash(request, "Edit recorded: the edited plan is re-assessed as a new request below.")
        return RedirectResponse(f"/inbox/workflows/{view.workflow_id}", status_code=303)
    done = {"approve": "Approved", "reject": "Rejected"}[decision]
    text = f"{done}: the request is now {view.status} "
    text += f"({view.approvals_received} of {view.required_approvals} approvals)."
    text += " The workflow resumes." if view.resumed else ""
    flash(request, text, kind="success")
    return RedirectResponse(f"/inbox/approvals/{approval_id}", status_code=303)
