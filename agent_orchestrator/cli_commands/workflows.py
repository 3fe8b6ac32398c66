"""`devops-agent workflows ...`: start a workflow and follow its status over the REST API."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table

from agent_orchestrator.cli_commands.options import (
    DEFAULT_URL,
    EXIT_REFUSED,
    ApiKey,
    AsJson,
    Url,
    connect,
)
from agent_orchestrator.cli_commands.output import (
    bullets,
    cell,
    console,
    fail,
    fields,
    plan_table,
    print_json,
    table,
    when,
)
from agent_orchestrator.client import AgentClient, JsonObject

app = typer.Typer(help="Start workflows and follow them.", no_args_is_help=True)

# Statuses in which a workflow is still moving on its own; anything else is settled for now.
MOVING = frozenset({"planning", "running"})
POLL_INTERVAL_S = 0.5


@app.command("status")
def status(
    workflow_id: Annotated[str, typer.Argument(help="The workflow's id (wf-...).")],
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """A workflow's status, plan, risk, approvals, results and timeline."""
    with connect(url, api_key) as client:
        workflow = client.workflow(workflow_id)
    if as_json:
        print_json(workflow)
    else:
        console().print(_detail_view(workflow))


@app.command("start")
def start(
    text: Annotated[
        str | None, typer.Argument(help="What to do, in plain words: 'restart web on prod'.")
    ] = None,
    operation: Annotated[
        str | None, typer.Option(help="A catalog operation instead of TEXT, e.g. restart.")
    ] = None,
    target: Annotated[str | None, typer.Option(help="The target of --operation.")] = None,
    environment: Annotated[str | None, typer.Option(help="The environment, e.g. prod.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(help="A parameter of --operation as k=v (repeatable; a list as JSON)."),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for the workflow to finish or pause."),
    ] = 0,
    as_json: AsJson = False,
    url: Url = DEFAULT_URL,
    api_key: ApiKey = None,
) -> None:
    """Ask for work: plain text, or one --operation on a --target."""
    body = start_body(text, operation, target, environment, param or [])
    with connect(url, api_key) as client:
        workflow = client.start_workflow(body)
        if wait > 0:
            workflow = _wait_settled(client, workflow, wait)
    _print_started(workflow, as_json=as_json)
    if workflow.get("status") in MOVING and wait > 0:
        workflow_id = workflow.get("workflow_id")
        fail(
            f"workflow {workflow_id} is still {workflow.get('status')} after {wait:g}s; "
            f"follow it with 'devops-agent workflows status {workflow_id}'",
            code=EXIT_REFUSED,
        )


def start_body(
    text: str | None,
    operation: str | None,
    target: str | None,
    environment: str | None,
    params: list[str],
) -> JsonObject:
    """The POST /orchestrate body, or a usage error naming the option that is wrong."""
    if (text is None) == (operation is None):
        raise typer.BadParameter(
            "give either TEXT (plain words) or --operation with --target",
            param_hint="'TEXT' / '--operation'",
        )
    body: JsonObject
    if operation is None:
        if target is not None or params:
            raise typer.BadParameter(
                "--target and --param go with --operation, not with TEXT",
                param_hint="'--target' / '--param'",
            )
        body = {"request": text}
    else:
        if not target:
            raise typer.BadParameter("--operation needs --target", param_hint="'--target'")
        body = {"operation": operation, "target": target, "params": parse_params(params)}
    if environment:
        body["environment"] = environment
    return body


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs. Values stay text (the service converts them to the catalog's types);
    a value starting with `[` is read as a JSON list."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not k=v", param_hint="'--param'")
        params[key.strip()] = _param_value(key, value)
    return params


def _param_value(key: str, value: str) -> Any:
    if not value.lstrip().startswith("["):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(
            f"{key}: {value!r} is not a JSON list ({error.msg})", param_hint="'--param'"
        ) from None


def _wait_settled(client: AgentClient, workflow: JsonObject, wait_s: float) -> JsonObject:
    """Poll until the workflow pauses for approval or ends, or `wait_s` runs out."""
    deadline = time.monotonic() + wait_s
    workflow_id = str(workflow["workflow_id"])
    while workflow.get("status") in MOVING and time.monotonic() < deadline:
        time.sleep(min(POLL_INTERVAL_S, max(deadline - time.monotonic(), 0)))
        workflow = client.workflow(workflow_id)
    return workflow


def _print_started(workflow: JsonObject, *, as_json: bool) -> None:
    if as_json:
        print_json(workflow)
        return
    risk = workflow.get("risk") or {}
    approval_id = workflow.get("approval_id") or workflow.get("pending_approval_id")
    summary = {
        "workflow": workflow.get("workflow_id"),
        "status": workflow.get("status"),
        "risk": risk.get("tier"),
        "approval": approval_id,
        "error": workflow.get("error"),
    }
    parts: list[Any] = [fields(summary), bullets("why this risk", risk.get("reasons") or [])]
    if approval_id and workflow.get("status") == "awaiting_approval":
        parts.append(cell(f"an approver runs: devops-agent approvals approve {approval_id}"))
    console().print(Group(*parts))


def _detail_view(workflow: JsonObject) -> Group:
    risk = workflow.get("risk") or {}
    summary = fields(
        {
            "workflow": workflow.get("workflow_id"),
            "status": workflow.get("status"),
            "requester": workflow.get("requester"),
            "request": _request_summary(workflow.get("request") or {}),
            "risk": risk.get("tier"),
            "approval": workflow.get("pending_approval_id"),
            "error": workflow.get("error"),
            "created": when(workflow.get("created_at")),
            "finished": when(workflow.get("finished_at")),
        }
    )
    return Group(
        summary,
        bullets("why this risk", risk.get("reasons") or []),
        plan_table(workflow.get("plan")),
        _results_table(workflow.get("results") or []),
        _timeline_table(workflow.get("timeline") or []),
    )


def _request_summary(request: JsonObject) -> str:
    if request.get("text"):
        return str(request["text"])
    steps = request.get("steps") or []
    return "; ".join(f"{s.get('operation')} {s.get('target')}" for s in steps) or "-"


def _results_table(results: list[JsonObject]) -> Table:
    grid = table("results", ["operation", "target", "status", "ms", "reason"])
    for result in results:
        duration = result.get("duration_ms")
        grid.add_row(
            cell(result.get("operation")),
            cell(result.get("target")),
            cell(result.get("status")),
            cell(f"{duration:.0f}" if isinstance(duration, int | float) else None),
            cell(result.get("reason")),
        )
    return grid


def _timeline_table(events: list[JsonObject]) -> Table:
    grid = table("timeline", ["at", "event", "detail"])
    for event in events:
        grid.add_row(
            when(event.get("created_at")), cell(event.get("event")), cell(event.get("detail"))
        )
    return grid
