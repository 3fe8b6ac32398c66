"""The MCP tools as plain functions over an `AgentBackend`; the server only routes calls here.

Nothing here decides anything: a read or a change becomes a workflow like any other request
(catalog, funnel, risk policy, gate), under the principal whose key the caller holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from shared.lib.catalog.models import InvalidParamsError, UnknownOperationError
from shared.lib.mcp.backend import AgentBackend, JsonObject
from shared.lib.mcp.models import (
    ChangeArgs,
    DescribeArgs,
    ListArgs,
    ReadArgs,
    WaitArgs,
    WorkflowArgs,
)
from shared.lib.mcp.schemas import operation_view
from shared.lib.workflows.models import readable_by
from shared.lib.workflows.store import TERMINAL_STATUSES

ProgressReport = Callable[[float, float | None, str | None], Awaitable[None]]

# A read answers at once; this bounds "at once" for a slow target.
READ_DEADLINE_S = 60.0
POLL_INTERVAL_S = 0.25
_SETTLED = TERMINAL_STATUSES | {"awaiting_approval"}


class ToolRefusal(Exception):
    """A call the tool will not make; the message names the argument and the way out."""


async def list_targets(backend: AgentBackend) -> JsonObject:
    return {"targets": [target.model_dump() for target in await backend.targets()]}


async def describe_operation(backend: AgentBackend, args: DescribeArgs) -> JsonObject:
    catalog = await backend.catalog()
    if args.operation is None:
        return {"operations": [operation_view(spec) for spec in catalog.operations.values()]}
    try:
        return {"operation": operation_view(catalog.get(args.operation))}
    except UnknownOperationError as error:
        raise ToolRefusal(str(error)) from None


async def run_read(backend: AgentBackend, args: ReadArgs) -> JsonObject:
    """One read-only operation, run as a workflow and answered with its result."""
    catalog = await backend.catalog()
    try:
        spec = catalog.get(args.operation)
        catalog.validate_params(args.operation, args.params)
    except (UnknownOperationError, InvalidParamsError) as error:
        raise ToolRefusal(str(error)) from None
    if spec.mutates:
        raise ToolRefusal(
            f"operation '{spec.name}' changes its target, so run_read will not run it; "
            "ask for it with request_change (a human may have to approve it)"
        )
    started = await backend.start(
        {
            "operation": args.operation,
            "target": args.target,
            "environment": args.environment,
            "params": args.params,
        }
    )
    detail = await _settle(backend, started["workflow_id"], timeout_s=READ_DEADLINE_S)
    reply = await _summary(backend, detail)
    reply["results"] = [_result(result) for result in detail.get("results") or []]
    return reply


async def request_change(backend: AgentBackend, args: ChangeArgs) -> JsonObject:
    """Start the change as a workflow and say where it stands; never wait for its execution."""
    if args.operation is not None:
        catalog = await backend.catalog()
        try:
            catalog.validate_params(args.operation, args.params)
        except (UnknownOperationError, InvalidParamsError) as error:
            raise ToolRefusal(str(error)) from None
    started = await backend.start(args.model_dump(exclude_none=True))
    reply = await _summary(backend, started)
    reply["next"] = _next_step(reply)
    return reply


async def get_workflow(backend: AgentBackend, args: WorkflowArgs) -> JsonObject:
    detail = await _readable(backend, args.workflow_id)
    reply = await _summary(backend, detail)
    reply |= {
        "requester": detail["requester"],
        "results": [_result(result) for result in detail.get("results") or []],
        "verification": detail.get("verification") or [],
        "timeline": [
            {"event": e["event"], "detail": e.get("detail", {}), "at": e["created_at"]}
            for e in detail.get("timeline") or []
        ],
    }
    return reply


async def wait_for_workflow(
    backend: AgentBackend, args: WaitArgs, *, progress: ProgressReport
) -> JsonObject:
    """Wait until the workflow finishes or `timeout_s` passes, reporting each status seen."""
    await _readable(backend, args.workflow_id)
    detail = await _settle(
        backend,
        args.workflow_id,
        timeout_s=args.timeout_s,
        settled=TERMINAL_STATUSES,
        progress=progress,
    )
    reply = await get_workflow(backend, WorkflowArgs(workflow_id=args.workflow_id))
    reply["finished"] = detail["status"] in TERMINAL_STATUSES
    if not reply["finished"]:
        reply["next"] = (
            f"still {detail['status']} after {args.timeout_s:g}s; call wait_for_workflow again "
            "later" + (" (a human has not decided yet)" if reply.get("approval_id") else "")
        )
    return reply


async def list_my_requests(backend: AgentBackend, args: ListArgs) -> JsonObject:
    views = await backend.my_workflows(args.limit)
    return {"workflows": [await _summary(backend, view) for view in views]}


async def _readable(backend: AgentBackend, workflow_id: str) -> JsonObject:
    detail = await backend.workflow(workflow_id)
    principal = await backend.principal()
    if not readable_by(principal, requester=str(detail.get("requester"))):
        raise ToolRefusal(
            f"workflow '{workflow_id}' is not one of yours ('{principal.name}'); you may read "
            "only workflows you requested (list them with list_my_requests)"
        )
    return detail


async def _settle(
    backend: AgentBackend,
    workflow_id: str,
    *,
    timeout_s: float,
    settled: frozenset[str] = _SETTLED,
    progress: ProgressReport | None = None,
) -> JsonObject:
    """Poll the workflow until its status is in `settled` or the deadline passes."""
    started = time.monotonic()
    last_status = None
    while True:
        detail = await backend.workflow(workflow_id)
        elapsed = time.monotonic() - started
        if progress is not None and detail["status"] != last_status:
            await progress(round(elapsed, 3), timeout_s, f"workflow {detail['status']}")
        last_status = detail["status"]
        if detail["status"] in settled or elapsed >= timeout_s:
            return detail
        await asyncio.sleep(min(POLL_INTERVAL_S, max(timeout_s - elapsed, 0.0)))


async def _summary(backend: AgentBackend, view: JsonObject) -> JsonObject:
    """Id, status, tier and rules, and the approval with its inbox link while one is pending."""
    risk = view.get("risk") or {}
    approval_id = view.get("approval_id") or view.get("pending_approval_id")
    summary: JsonObject = {
        "workflow_id": view["workflow_id"],
        "status": view["status"],
        "tier": risk.get("tier"),
        "rules": risk.get("reasons", []),
        "plan": view.get("plan"),
        "approval_id": None,
        "inbox_url": None,
    }
    if approval_id and view["status"] == "awaiting_approval":
        summary["approval_id"] = str(approval_id)
        summary["inbox_url"] = await backend.inbox_link(str(approval_id))
    if view.get("error"):
        summary["error"] = view["error"]
    if view.get("created_at"):
        summary["created_at"] = view["created_at"]
    return summary


def _next_step(reply: JsonObject) -> str:
    status = reply["status"]
    if status == "awaiting_approval":
        return (
            "a human must approve this before anything runs; give the person the inbox link. "
            "You cannot approve it. Follow it with wait_for_workflow."
        )
    if status in TERMINAL_STATUSES:
        return f"the workflow ended {status}; see get_workflow for its timeline"
    return "no approval was required; follow it with wait_for_workflow"


def _result(result: dict[str, Any]) -> JsonObject:
    """An execution result without the invocation's internals (endpoints, container ids)."""
    keep = ("operation", "target", "status", "exit_code", "stdout", "stderr", "truncated")
    shaped = {key: result[key] for key in keep if key in result}
    for key in ("reason", "data"):
        if result.get(key):
            shaped[key] = result[key]
    return shaped
