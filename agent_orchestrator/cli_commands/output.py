"""How CLI commands print: Rich tables for people, the raw JSON reply for scripts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Piped output is not squeezed into 80 columns: ids must come out whole.
PIPE_WIDTH = 160


def console() -> Console:
    out = Console()
    if not out.is_terminal and "COLUMNS" not in os.environ:
        return Console(width=PIPE_WIDTH)
    return out


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def fail(message: str, *, code: int) -> NoReturn:
    """Print `error: ...` on stderr and leave with `code` (1 refused, 2 usage or config)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def cell(value: Any) -> Text:
    """Plain text: values from the service are never read as Rich markup."""
    if value is None or value == "" or value == []:
        return Text("-", style="dim")
    if isinstance(value, list):
        return Text(", ".join(str(item) for item in value))
    if isinstance(value, dict):
        return Text(json.dumps(value, separators=(",", ":")))
    return Text(str(value))


def when(value: Any) -> Text:
    """An ISO timestamp from the service as `YYYY-MM-DD HH:MM:SSZ` (UTC)."""
    if not isinstance(value, str):
        return cell(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return cell(value)
    return Text(moment.strftime("%Y-%m-%d %H:%M:%SZ"))


# Widths of the ids the service hands out: an approval's UUID, a workflow's `wf-` + 16 hex.
APPROVAL_ID_WIDTH = 36
WORKFLOW_ID_WIDTH = 19


def table(
    title: str | None, columns: Iterable[str], *, ids: Mapping[str, int] | None = None
) -> Table:
    """A table whose `ids` columns (name -> width) are never wrapped or cut short."""
    grid = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in columns:
        width = (ids or {}).get(name)
        grid.add_column(name, no_wrap=width is not None, min_width=width or len(name))
    return grid


def fields(rows: Mapping[str, Any]) -> Table:
    """`name  value` lines, for one object."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in rows.items():
        grid.add_row(name, value if isinstance(value, Text) else cell(value))
    return grid


def plan_table(plan: list[dict[str, Any]] | None) -> Table:
    grid = table("plan", ["#", "operation", "target", "environment", "params"])
    for index, step in enumerate(plan or []):
        grid.add_row(
            cell(index),
            cell(step.get("operation")),
            cell(step.get("target")),
            cell(step.get("environment")),
            cell(step.get("params") or None),
        )
    return grid


def bullets(title: str, lines: Iterable[str]) -> Text:
    text = Text(f"{title}\n", style="bold")
    for line in lines:
        text.append(f"  - {line}\n", style="")
    return text
