"""`devops-agent status`: what the service can reach, as a table (GET /status)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from agent_orchestrator.cli_commands.options import ApiKey, Url, connect
from agent_orchestrator.cli_commands.output import cell, console, fields, print_json, table

STATE_STYLE = {"up": "green", "down": "bold red", "unconfigured": "dim"}


def show_status(*, as_json: bool, url: Url, api_key: ApiKey) -> bool:
    """Print the report; whether every component is up (or unconfigured)."""
    with connect(url, api_key) as client:
        report = client.status()
    if as_json:
        print_json(report)
    else:
        console().print(status_view(report))
    return report.get("state") == "up"


def status_view(report: dict[str, Any]) -> Group:
    summary = fields(
        {
            "state": Text(str(report.get("state")), style=_style(report.get("state"))),
            "checked at": report.get("checked_at"),
            "took": f"{report.get('elapsed_ms')} ms (each probe at most "
            f"{report.get('probe_timeout_s')} s)",
            "pending approvals": report.get("pending_approvals"),
            "running workflows": report.get("running_workflows"),
        }
    )
    return Group(summary, components_table(report.get("components", [])))


def components_table(components: list[dict[str, Any]]) -> Table:
    grid = table("components", ["component", "state", "latency ms", "detail / last error"])
    for component in components:
        state = str(component.get("state"))
        grid.add_row(
            cell(component.get("name")),
            Text(state, style=_style(state)),
            cell(component.get("latency_ms")),
            cell(component.get("error") or _summary(component)),
        )
    return grid


def _summary(component: dict[str, Any]) -> str | None:
    detail: dict[str, Any] = component.get("detail") or {}
    kind = component.get("kind")
    if kind == "docker_host":
        return f"engine {detail.get('engine_version')} at {detail.get('url')}"
    if kind == "ssh_host":
        return f"{detail.get('endpoint')} ({detail.get('server_version')})"
    if kind == "migrations":
        return f"{detail.get('applied')}/{detail.get('known')} applied"
    if kind == "llm":
        return f"{detail.get('model')} of {len(detail.get('models', []))} models"
    if kind == "notification_receiver":
        last = detail.get("last_delivery")
        return f"last: {last['event']} {last['detail']}" if last else "no delivery yet"
    if kind == "sweeper":
        return f"{detail.get('runs')} runs, last {detail.get('last_finished')}"
    if kind == "counts":
        return f"workflows by status: {detail.get('active_workflows')}"
    return ", ".join(f"{k}={v}" for k, v in detail.items()) or None


def _style(state: Any) -> str:
    return STATE_STYLE.get(str(state), "yellow")
