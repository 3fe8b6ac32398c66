"""Builds the requests an operation sends: which container a target names (by name, or by
labels matching exactly one) and its checked params (tail, since, timeout, argv).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from docker.models.containers import Container

from shared.lib.execution.models import ExecutionStatus
from shared.lib.executors.docker.context import Context, Stop


def find_containers(ctx: Context) -> list[Container]:
    labels = ctx.target.labels
    filters: dict[str, str | list[str] | bool] = {}
    if labels:
        filters["label"] = [f"{key}={value}" for key, value in sorted(labels.items())]
    ctx.announce(f"GET /containers/json?all=1&filters={json.dumps(filters)}")
    return ctx.engine.containers.list(all=True, filters=filters, sparse=True)


def target_container(ctx: Context) -> Container:
    """The one container the target names: by name, else by labels (exactly one must match)."""
    target = ctx.target
    if not target.container and not target.labels:
        reason = f"target '{target.name}' names neither a container nor labels; set one of them"
        raise Stop(ExecutionStatus.REFUSED, reason)
    name = target.container or _only_match(ctx)
    ctx.announce(f"GET /containers/{name}/json")
    return ctx.engine.containers.get(name)


def _only_match(ctx: Context) -> str:
    found = find_containers(ctx)
    if len(found) != 1:
        names = ", ".join(sorted(sparse_name(c) for c in found)) or "none"
        reason = (
            f"labels {ctx.ref} must match exactly one container on host "
            f"'{ctx.target.docker_host}', matched {len(found)}: {names}"
        )
        raise Stop(ExecutionStatus.FAILED, reason)
    return sparse_name(found[0])


def sparse_name(container: Container) -> str:
    names: list[str] = container.attrs.get("Names") or [container.id or "?"]
    return names[0].lstrip("/")


def int_param(ctx: Context, name: str, default: int) -> int:
    value = ctx.call.params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        reason = f"param '{name}' of {ctx.call.operation} must be an integer >= 0, got {value!r}"
        raise Stop(ExecutionStatus.REFUSED, reason)
    return value


def since_param(ctx: Context) -> datetime | None:
    """`since` is seconds back from now (int) or an ISO 8601 timestamp."""
    value = ctx.call.params.get("since")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return datetime.now(UTC) - timedelta(seconds=value)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        reason = f"param 'since' must be seconds (int) or an ISO 8601 timestamp, got {value!r}"
        raise Stop(ExecutionStatus.REFUSED, reason) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def argv_param(ctx: Context) -> list[str]:
    argv = ctx.call.params.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        reason = f"param 'argv' of exec must be a non-empty list of strings, got {argv!r}"
        raise Stop(ExecutionStatus.REFUSED, reason)
    return argv


def container_state(container: Container) -> dict[str, Any]:
    state: dict[str, Any] = container.attrs.get("State") or {}
    return state
