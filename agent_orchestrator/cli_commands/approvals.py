"""`devops-agent approvals ...`: list, read and decide approval requests over the REST API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer
from rich.console import Group
from rich.table import Table

from agent_orchestrator.cli_commands.options import DEFAULT_URL, ApiKey, AsJson, Url, connect
from agent_orchestrator.cli_commands.output import (
    APPROVAL_ID_WIDTH,
    WORKFLOW_ID_WIDTH,
    bullets,
    cell,
    console,
    fields,
    plan_table,
    print_json,
    table,
    when,
)

app = typer.Typer(help="List, inspect and decide approval requests.", no_args_is_help=True)

ApprovalId = Annotated[str, typer.Argument(help="The approval's id (a UUID).")]
RiskLevel = Literal["low", "medium", "high", "critical"]


@app.command("list")
def list_pending(
    role: Annotated[
        str | None, typer.Option(help="Only approvals this role may decide, e.g. approver.")
    ] = None,
    risk_level: Annotated[RiskLevel | None, typer.Option(help="Only this risk level.")] = None,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Pending approval requests, oldest first."""
    with connect(url, api_key) as client:
        pending = client.pending_approvals(role=role, risk_level=risk_level)
    if as_json:
        print_json(pending)
    elif not pending:
        console().print("no pending approvals")
    else:
        console().print(_pending_table(pending))


@app.command("show")
def show(
    approval_id: ApprovalId, as_json: AsJson = False, url: Url = DEFAULT_URL, api_key: ApiKey = None
) -> None:
    """Everything an approver needs: plan, risk and its reasons, targets, decisions so far."""
    with connect(url, api_key) as client:
        approval = client.approval(approval_id)
    if as_json:
        print_json(approval)
    else:
        console().print(_approval_view(approval))


@app.command("approve")
def approve(
    approval_id: ApprovalId,
    reason: Annotated[str | None, typer.Option(help="Why; kept in the audit trail.")] = None,
    plan_hash: Annotated[
        str | None,
        typer.Option(help="The plan hash you reviewed; refused if the plan has changed since."),
    ] = None,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Approve a pending request (you cannot approve your own)."""
    with connect(url, api_key) as client:
        decision = client.approve(approval_id, reason=reason, plan_hash=plan_hash)
    _print_decision(decision, as_json=as_json)


@app.command("reject")
def reject(
    approval_id: ApprovalId,
    reason: Annotated[str, typer.Option(help="Why (required); kept in the audit trail.")],
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Reject a pending request; its workflow stops without running anything."""
    if not reason.strip():
        raise typer.BadParameter("give a reason for the rejection", param_hint="'--reason'")
    with connect(url, api_key) as client:
        decision = client.reject(approval_id, reason=reason)
    _print_decision(decision, as_json=as_json)


@app.command("clean-expired")
def clean_expired(as_json: AsJson = False, url: Url = DEFAULT_URL, api_key: ApiKey = None) -> None:
    """Resolve approvals past their time limit now (needs ops-lead or admin)."""
    with connect(url, api_key) as client:
        reply = client.expire_approvals()
    if as_json:
        print_json(reply)
    else:
        console().print(f"expired {reply.get('expired', 0)} approval request(s)")


def _pending_table(pending: list[dict[str, Any]]) -> Table:
    grid = table(
        None,
        ["approval", "workflow", "risk", "votes", "roles", "requester", "expires"],
        ids={"approval": APPROVAL_ID_WIDTH, "workflow": WORKFLOW_ID_WIDTH},
    )
    for item in pending:
        grid.add_row(
            cell(item.get("id")),
            cell(item.get("workflow_id")),
            cell(item.get("risk_level")),
            cell(f"{item.get('approvals_received', 0)}/{item.get('required_approvals', '?')}"),
            cell(item.get("allowed_roles")),
            cell(item.get("requester")),
            when(item.get("expires_at")),
        )
    return grid


def _approval_view(approval: dict[str, Any]) -> Group:
    summary = fields(
        {
            "approval": approval.get("id"),
            "workflow": approval.get("workflow_id"),
            "status": approval.get("status"),
            "risk": approval.get("risk_level"),
            "votes": f"{approval.get('approvals_received', 0)}/"
            f"{approval.get('required_approvals', '?')}",
            "roles": approval.get("allowed_roles"),
            "requester": approval.get("requester"),
            "plan hash": approval.get("plan_hash"),
            "expires": when(approval.get("expires_at")),
            "on timeout": approval.get("timeout_outcome"),
        }
    )
    reasons = (approval.get("assessment") or {}).get("reasons") or []
    actions = _actions_table(approval.get("actions") or [])
    return Group(
        summary,
        plan_table((approval.get("plan") or {}).get("steps")),
        bullets("risk", reasons),
        actions,
    )


def _actions_table(actions: list[dict[str, Any]]) -> Table:
    grid = table("decisions", ["at", "action", "actor", "role", "reason"])
    for action in actions:
        grid.add_row(
            when(action.get("created_at")),
            cell(action.get("action")),
            cell(action.get("actor")),
            cell(action.get("role")),
            cell(action.get("reason")),
        )
    return grid


def _print_decision(decision: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(decision)
        return
    status = decision.get("status")
    votes = f"{decision.get('approvals_received')}/{decision.get('required_approvals')} approvals"
    workflow = f"workflow {decision.get('workflow_id')}"
    if decision.get("resumed"):
        workflow += " is resuming"
    elif status == "pending":
        workflow += " still waits for approvals"
    console().print(
        cell(f"approval {decision.get('approval_id')} is {status} ({votes}); {workflow}")
    )
