"""The Docker operations themselves, one function per catalog operation, each run on a worker
thread with the call's context; `OPERATIONS` maps operation names onto them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from docker.models.containers import Container

from shared.lib.execution.models import ExecutionStatus, cap_output
from shared.lib.executors.docker.context import Context, Outcome, Stop
from shared.lib.executors.docker.parsing import (
    STDERR_STREAM,
    STDOUT_STREAM,
    read_frames,
    stats_figures,
)
from shared.lib.executors.docker.selection import (
    argv_param,
    container_state,
    find_containers,
    int_param,
    since_param,
    sparse_name,
    target_container,
)

DEFAULT_TAIL = 200
DEFAULT_STOP_TIMEOUT_S = 10


def _list(ctx: Context) -> Outcome:
    rows = [
        {
            "id": c.id,
            "name": sparse_name(c),
            "image": c.attrs.get("Image"),
            "state": c.attrs.get("State"),
            "status": c.attrs.get("Status"),
            "labels": c.attrs.get("Labels") or {},
        }
        for c in find_containers(ctx)
    ]
    text = "\n".join(f"{r['name']}\t{r['state']}\t{r['image']}" for r in rows)
    stdout, truncated = cap_output(text, ctx.call.output_cap)
    return Outcome(stdout=stdout, truncated=truncated, data={"containers": rows})


def _inspect(ctx: Context) -> Outcome:
    container = target_container(ctx)
    attrs, config = container.attrs, container.attrs.get("Config") or {}
    stdout, truncated = cap_output(json.dumps(attrs, indent=2), ctx.call.output_cap)
    data = {
        "id": container.id,
        "name": container.name,
        "image": config.get("Image"),
        "labels": config.get("Labels") or {},
        "state": container_state(container),
        "restart_count": attrs.get("RestartCount"),
        "created": attrs.get("Created"),
    }
    return Outcome(stdout=stdout, truncated=truncated, data=data)


def _logs(ctx: Context) -> Outcome:
    tail, since = int_param(ctx, "tail", DEFAULT_TAIL), since_param(ctx)
    container = target_container(ctx)
    query = f"stdout=1&stderr=1&tail={tail}" + (f"&since={since.timestamp():.0f}" if since else "")
    ctx.announce(f"GET /containers/{container.name}/logs?{query}")
    text = container.logs(stdout=True, stderr=True, tail=tail, since=since).decode(errors="replace")
    stdout, truncated = cap_output(text, ctx.call.output_cap)
    data = {"lines": text.count("\n"), "tail": tail, "since": since.isoformat() if since else None}
    return Outcome(stdout=stdout, truncated=truncated, data=data)


def _stats(ctx: Context) -> Outcome:
    container = target_container(ctx)
    if container_state(container).get("Running") is not True:
        reason = f"container '{container.name}' is {container.status}; stats need it running"
        raise Stop(ExecutionStatus.FAILED, reason)
    ctx.announce(f"GET /containers/{container.name}/stats?stream=0")
    sample: dict[str, Any] = container.stats(stream=False)  # type: ignore[assignment]
    data = stats_figures(sample)
    stdout = (
        f"cpu {data['cpu_percent']:.2f}% mem {data['memory_usage_bytes']}"
        f" / {data['memory_limit_bytes']} bytes ({data['memory_percent']:.2f}%)"
    )
    return Outcome(stdout=stdout, data=data)


def _health(ctx: Context) -> Outcome:
    container = target_container(ctx)
    state = container_state(container)
    health: dict[str, Any] = state.get("Health") or {}
    checks: list[dict[str, Any]] = health.get("Log") or []
    data = {
        **_state_data(state),
        "finished_at": state.get("FinishedAt"),
        "exit_code": state.get("ExitCode"),
        "restart_count": container.attrs.get("RestartCount"),
        "image_id": container.attrs.get("Image"),
        "health": health.get("Status"),
        "failing_streak": health.get("FailingStreak"),
        "last_check": checks[-1] if checks else None,
    }
    stdout = f"{data['status']} health={data['health'] or 'none'} started_at={data['started_at']}"
    return Outcome(stdout=stdout, data=data, **_health_verdict(container.name, data))


def _health_verdict(name: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """A container that is not running, or whose own health check says unhealthy, fails the
    probe (as a stopped systemd unit does over SSH); the data says what was seen either way."""
    if not data["running"]:
        return {"status": ExecutionStatus.FAILED, "reason": f"{name} is {data['status']}"}
    if data["health"] == "unhealthy":
        streak = data["failing_streak"]
        return {
            "status": ExecutionStatus.FAILED,
            "reason": f"{name} is unhealthy ({streak} failed health checks in a row)",
        }
    return {}


def _state_data(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": state.get("Status"),
        "running": state.get("Running"),
        "started_at": state.get("StartedAt"),
    }


def _start(ctx: Context) -> Outcome:
    container = target_container(ctx)
    ctx.announce(f"POST /containers/{container.name}/start")
    container.start()
    return _expect_running(container, action="start")


def _stop(ctx: Context) -> Outcome:
    timeout = int_param(ctx, "timeout", DEFAULT_STOP_TIMEOUT_S)
    container = target_container(ctx)
    ctx.announce(f"POST /containers/{container.name}/stop?t={timeout}")
    container.stop(timeout=timeout)
    container.reload()
    state = container_state(container)
    data = {**_state_data(state), "exit_code": state.get("ExitCode")}
    if state.get("Running"):
        reason = f"container '{container.name}' is still running after stop"
        return Outcome(status=ExecutionStatus.FAILED, reason=reason, data=data)
    return Outcome(stdout=f"{container.name} {data['status']}", data=data)


def _restart(ctx: Context) -> Outcome:
    timeout = int_param(ctx, "timeout", DEFAULT_STOP_TIMEOUT_S)
    container = target_container(ctx)
    before = container_state(container).get("StartedAt")
    ctx.announce(f"POST /containers/{container.name}/restart?t={timeout}")
    container.restart(timeout=timeout)
    outcome = _expect_running(container, action="restart")
    after = outcome.data["started_at"]
    outcome.data.update(started_at_before=before, started_at_after=after)
    if outcome.status is ExecutionStatus.OK and before == after:
        outcome.status = ExecutionStatus.FAILED
        outcome.reason = f"container '{container.name}' kept StartedAt {after} through restart"
    return outcome


def _expect_running(container: Container, *, action: str) -> Outcome:
    container.reload()
    state = container_state(container)
    data = _state_data(state)
    if not state.get("Running"):
        reason = (
            f"container '{container.name}' is {state.get('Status')} after {action} "
            f"(exit code {state.get('ExitCode')})"
        )
        return Outcome(status=ExecutionStatus.FAILED, reason=reason, data=data)
    return Outcome(stdout=f"{container.name} running since {data['started_at']}", data=data)


def _exec(ctx: Context) -> Outcome:
    argv = argv_param(ctx)
    ctx.argv = tuple(argv)
    container = target_container(ctx)
    api = ctx.engine.api
    ctx.announce(f"POST /containers/{container.name}/exec")
    exec_id: str = api.exec_create(container.id, argv, stdout=True, stderr=True)["Id"]
    ctx.announce(f"POST /containers/{container.name}/exec; POST /exec/{exec_id}/start")
    # The SDK's exec reader polls with no timeout; reading the raw socket keeps our deadline.
    sock = api.exec_start(exec_id, socket=True)
    try:
        streams, overflow = read_frames(sock, ctx.deadline, limit=ctx.call.output_cap * 4)
    finally:
        sock.close()
    exit_code = _exec_exit_code(ctx, exec_id)
    stdout, stdout_cut = cap_output(
        streams[STDOUT_STREAM].decode(errors="replace"), ctx.call.output_cap
    )
    stderr, stderr_cut = cap_output(
        streams[STDERR_STREAM].decode(errors="replace"), ctx.call.output_cap
    )
    outcome = Outcome(
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        truncated=overflow or stdout_cut or stderr_cut,
        data={"exec_id": exec_id},
    )
    if exit_code != 0:
        outcome.status = ExecutionStatus.FAILED
        outcome.reason = f"command {argv[0]!r} exited with {exit_code} in '{container.name}'"
    return outcome


def _exec_exit_code(ctx: Context, exec_id: str) -> int | None:
    # The stream can close a moment before the engine records the exit code.
    while True:
        info = ctx.engine.api.exec_inspect(exec_id)
        if not info.get("Running"):
            exit_code: int | None = info.get("ExitCode")
            return exit_code
        if time.monotonic() > ctx.deadline:
            raise Stop(ExecutionStatus.TIMEOUT, "exec gave no exit code before the deadline")
        time.sleep(0.01)


OPERATIONS: dict[str, Callable[[Context], Outcome]] = {
    "list": _list,
    "inspect": _inspect,
    "logs": _logs,
    "stats": _stats,
    "health": _health,
    "start": _start,
    "stop": _stop,
    "restart": _restart,
    "exec": _exec,
}
