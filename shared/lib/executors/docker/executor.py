"""Runs catalog operations on containers through the Docker Engine API, one client per host.

The docker SDK blocks, so every call runs on a bounded thread pool under `call.timeout_s`;
remote failures (missing container, unreachable engine, timeout, API error) come back as data.
"""

from __future__ import annotations

import asyncio
import json
import select
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.utils.socket import read as socket_read

from shared.lib.execution.models import (
    DockerTarget,
    ExecutionResult,
    ExecutionStatus,
    Invocation,
    OperationCall,
    cap_output,
)

DEFAULT_TAIL = 200
DEFAULT_STOP_TIMEOUT_S = 10
FRAME_HEADER = struct.Struct(">BxxxL")  # stream id, 3 pad bytes, payload size
STDOUT_STREAM, STDERR_STREAM = 1, 2


class _Stop(Exception):
    """Ends an operation early with a status and a reason (bad params, ambiguous selection...)."""

    def __init__(self, status: ExecutionStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Outcome:
    status: ExecutionStatus = ExecutionStatus.OK
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Context:
    """One call in flight; `api_call` names the request being sent, or the last one sent."""

    call: OperationCall
    target: DockerTarget
    deadline: float
    client: docker.DockerClient | None = None
    api_call: str = ""
    argv: tuple[str, ...] | None = None

    @property
    def engine(self) -> docker.DockerClient:
        assert self.client is not None, "the client is set before any operation runs"
        return self.client

    @property
    def ref(self) -> str:
        return self.target.container or _selector(self.target.labels)

    def announce(self, api_call: str) -> None:
        self.api_call = api_call


class DockerExecutor:
    """Executor for Docker targets: list, inspect, logs, stats, health, start/stop/restart, exec."""

    kind: str = "docker"

    def __init__(self, *, max_workers: int = 8, api_timeout_s: int = 60) -> None:
        self._api_timeout_s = api_timeout_s
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="docker-exec")
        self._clients: dict[str, docker.DockerClient] = {}
        self._lock = threading.Lock()

    def supports(self, operation: str) -> bool:
        return operation in _OPERATIONS

    async def execute(self, call: OperationCall) -> ExecutionResult:
        started = time.perf_counter()
        target = call.target
        if not isinstance(target, DockerTarget):
            reason = f"docker executor cannot run on {target.kind} target '{target.name}'"
            return _refused(call, reason, endpoint="", started=started)
        if not self.supports(call.operation):
            reason = f"operation '{call.operation}' is not supported by the docker executor"
            return _refused(call, reason, endpoint=target.docker_url, started=started)
        ctx = _Context(call=call, target=target, deadline=time.monotonic() + call.timeout_s)
        future = asyncio.get_running_loop().run_in_executor(self._pool, self._run, ctx)
        try:
            outcome = await asyncio.wait_for(future, timeout=call.timeout_s)
        except TimeoutError:
            outcome = _timed_out(ctx)
        return _result(ctx, outcome, started)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _client(self, ctx: _Context) -> docker.DockerClient:
        url = ctx.target.docker_url
        with self._lock:
            cached = self._clients.get(url)
        if cached is not None:
            return cached
        # Built outside the lock: version="auto" asks the engine, which may hang on a dead host.
        ctx.announce("GET /version")
        client = docker.DockerClient(base_url=url, version="auto", timeout=self._api_timeout_s)
        with self._lock:
            kept = self._clients.setdefault(url, client)
        if kept is not client:
            client.close()
        return kept

    def _run(self, ctx: _Context) -> _Outcome:
        host, url = ctx.target.docker_host, ctx.target.docker_url
        try:
            ctx.client = self._client(ctx)
        except DockerException as exc:
            reason = f"docker host '{host}' at {url} is unreachable: {exc}"
            return _failure(ExecutionStatus.UNREACHABLE, reason)
        try:
            return _OPERATIONS[ctx.call.operation](ctx)
        except _Stop as stop:
            return _failure(stop.status, stop.reason)
        except NotFound:
            return _failure(
                ExecutionStatus.FAILED, f"container '{ctx.ref}' not found on host '{host}'"
            )
        except APIError as exc:
            reason = f"docker engine on '{host}' rejected {ctx.api_call}: {exc.explanation or exc}"
            return _failure(ExecutionStatus.FAILED, reason)
        except requests.exceptions.ConnectionError as exc:
            reason = f"docker host '{host}' at {url} is unreachable: {exc}"
            return _failure(ExecutionStatus.UNREACHABLE, reason)
        except requests.exceptions.Timeout:
            return _timed_out(ctx)
        except DockerException as exc:
            return _failure(ExecutionStatus.FAILED, f"docker call {ctx.api_call} failed: {exc}")


# --- results ---------------------------------------------------------------------------------


def _failure(status: ExecutionStatus, reason: str) -> _Outcome:
    return _Outcome(status=status, reason=reason)


def _timed_out(ctx: _Context) -> _Outcome:
    reason = f"{ctx.call.operation} on '{ctx.target.name}' took longer than {ctx.call.timeout_s}s"
    if ctx.argv is not None:
        reason += "; the command may still be running in the container"
    return _failure(ExecutionStatus.TIMEOUT, reason)


def _result(ctx: _Context, outcome: _Outcome, started: float) -> ExecutionResult:
    endpoint = ctx.target.docker_url
    return ExecutionResult(
        status=outcome.status,
        operation=ctx.call.operation,
        target=ctx.target.name,
        invocation=Invocation(
            kind="docker-api", endpoint=endpoint, call=ctx.api_call, argv=ctx.argv
        ),
        exit_code=outcome.exit_code,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        truncated=outcome.truncated,
        duration_ms=_elapsed_ms(started),
        reason=outcome.reason,
        data=outcome.data,
    )


def _refused(call: OperationCall, reason: str, *, endpoint: str, started: float) -> ExecutionResult:
    return ExecutionResult(
        status=ExecutionStatus.REFUSED,
        operation=call.operation,
        target=call.target.name,
        invocation=Invocation(kind="none", endpoint=endpoint, call=""),
        duration_ms=_elapsed_ms(started),
        reason=reason,
    )


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# --- container selection and params ----------------------------------------------------------


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _find(ctx: _Context) -> list[Container]:
    labels = ctx.target.labels
    filters: dict[str, str | list[str] | bool] = {}
    if labels:
        filters["label"] = [f"{key}={value}" for key, value in sorted(labels.items())]
    ctx.announce(f"GET /containers/json?all=1&filters={json.dumps(filters)}")
    return ctx.engine.containers.list(all=True, filters=filters, sparse=True)


def _container(ctx: _Context) -> Container:
    """The one container the target names: by name, else by labels (exactly one must match)."""
    target = ctx.target
    if not target.container and not target.labels:
        reason = f"target '{target.name}' names neither a container nor labels; set one of them"
        raise _Stop(ExecutionStatus.REFUSED, reason)
    name = target.container or _only_match(ctx)
    ctx.announce(f"GET /containers/{name}/json")
    return ctx.engine.containers.get(name)


def _only_match(ctx: _Context) -> str:
    found = _find(ctx)
    if len(found) != 1:
        names = ", ".join(sorted(_sparse_name(c) for c in found)) or "none"
        reason = (
            f"labels {ctx.ref} must match exactly one container on host "
            f"'{ctx.target.docker_host}', matched {len(found)}: {names}"
        )
        raise _Stop(ExecutionStatus.FAILED, reason)
    return _sparse_name(found[0])


def _sparse_name(container: Container) -> str:
    names: list[str] = container.attrs.get("Names") or [container.id or "?"]
    return names[0].lstrip("/")


def _int_param(ctx: _Context, name: str, default: int) -> int:
    value = ctx.call.params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        reason = f"param '{name}' of {ctx.call.operation} must be an integer >= 0, got {value!r}"
        raise _Stop(ExecutionStatus.REFUSED, reason)
    return value


def _since_param(ctx: _Context) -> datetime | None:
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
        raise _Stop(ExecutionStatus.REFUSED, reason) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _argv_param(ctx: _Context) -> list[str]:
    argv = ctx.call.params.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        reason = f"param 'argv' of exec must be a non-empty list of strings, got {argv!r}"
        raise _Stop(ExecutionStatus.REFUSED, reason)
    return argv


def _state(container: Container) -> dict[str, Any]:
    state: dict[str, Any] = container.attrs.get("State") or {}
    return state


# --- operations ------------------------------------------------------------------------------


def _list(ctx: _Context) -> _Outcome:
    rows = [
        {
            "id": c.id,
            "name": _sparse_name(c),
            "image": c.attrs.get("Image"),
            "state": c.attrs.get("State"),
            "status": c.attrs.get("Status"),
            "labels": c.attrs.get("Labels") or {},
        }
        for c in _find(ctx)
    ]
    text = "\n".join(f"{r['name']}\t{r['state']}\t{r['image']}" for r in rows)
    stdout, truncated = cap_output(text, ctx.call.output_cap)
    return _Outcome(stdout=stdout, truncated=truncated, data={"containers": rows})


def _inspect(ctx: _Context) -> _Outcome:
    container = _container(ctx)
    attrs, config = container.attrs, container.attrs.get("Config") or {}
    stdout, truncated = cap_output(json.dumps(attrs, indent=2), ctx.call.output_cap)
    data = {
        "id": container.id,
        "name": container.name,
        "image": config.get("Image"),
        "labels": config.get("Labels") or {},
        "state": _state(container),
        "restart_count": attrs.get("RestartCount"),
        "created": attrs.get("Created"),
    }
    return _Outcome(stdout=stdout, truncated=truncated, data=data)


def _logs(ctx: _Context) -> _Outcome:
    tail, since = _int_param(ctx, "tail", DEFAULT_TAIL), _since_param(ctx)
    container = _container(ctx)
    query = f"stdout=1&stderr=1&tail={tail}" + (f"&since={since.timestamp():.0f}" if since else "")
    ctx.announce(f"GET /containers/{container.name}/logs?{query}")
    text = container.logs(stdout=True, stderr=True, tail=tail, since=since).decode(errors="replace")
    stdout, truncated = cap_output(text, ctx.call.output_cap)
    data = {"lines": text.count("\n"), "tail": tail, "since": since.isoformat() if since else None}
    return _Outcome(stdout=stdout, truncated=truncated, data=data)


def _stats(ctx: _Context) -> _Outcome:
    container = _container(ctx)
    if _state(container).get("Running") is not True:
        reason = f"container '{container.name}' is {container.status}; stats need it running"
        raise _Stop(ExecutionStatus.FAILED, reason)
    ctx.announce(f"GET /containers/{container.name}/stats?stream=0")
    sample: dict[str, Any] = container.stats(stream=False)  # type: ignore[assignment]
    data = _stats_figures(sample)
    stdout = (
        f"cpu {data['cpu_percent']:.2f}% mem {data['memory_usage_bytes']}"
        f" / {data['memory_limit_bytes']} bytes ({data['memory_percent']:.2f}%)"
    )
    return _Outcome(stdout=stdout, data=data)


def _stats_figures(sample: dict[str, Any]) -> dict[str, Any]:
    """CPU and memory figures computed the way `docker stats` does (page cache is not usage)."""
    cpu, pre = sample.get("cpu_stats") or {}, sample.get("precpu_stats") or {}
    cpu_delta = _cpu_total(cpu) - _cpu_total(pre)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [1])
    busy = cpu_delta > 0 and system_delta > 0
    memory = sample.get("memory_stats") or {}
    details = memory.get("stats") or {}
    cache = details.get("inactive_file", details.get("total_inactive_file", 0))
    usage, limit = max(memory.get("usage", 0) - cache, 0), memory.get("limit", 0)
    return {
        "cpu_percent": round(cpu_delta / system_delta * cpus * 100, 3) if busy else 0.0,
        "online_cpus": cpus,
        "memory_usage_bytes": usage,
        "memory_limit_bytes": limit,
        "memory_percent": round(usage / limit * 100, 3) if limit else 0.0,
        "pids": (sample.get("pids_stats") or {}).get("current"),
        "read_at": sample.get("read"),
    }


def _cpu_total(cpu_stats: dict[str, Any]) -> int:
    total: int = (cpu_stats.get("cpu_usage") or {}).get("total_usage", 0)
    return total


def _health(ctx: _Context) -> _Outcome:
    container = _container(ctx)
    state = _state(container)
    health: dict[str, Any] = state.get("Health") or {}
    checks: list[dict[str, Any]] = health.get("Log") or []
    data = {
        **_state_data(state),
        "finished_at": state.get("FinishedAt"),
        "exit_code": state.get("ExitCode"),
        "restart_count": container.attrs.get("RestartCount"),
        "health": health.get("Status"),
        "failing_streak": health.get("FailingStreak"),
        "last_check": checks[-1] if checks else None,
    }
    stdout = f"{data['status']} health={data['health'] or 'none'} started_at={data['started_at']}"
    return _Outcome(stdout=stdout, data=data)


def _state_data(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": state.get("Status"),
        "running": state.get("Running"),
        "started_at": state.get("StartedAt"),
    }


def _start(ctx: _Context) -> _Outcome:
    container = _container(ctx)
    ctx.announce(f"POST /containers/{container.name}/start")
    container.start()
    return _expect_running(container, action="start")


def _stop(ctx: _Context) -> _Outcome:
    timeout = _int_param(ctx, "timeout", DEFAULT_STOP_TIMEOUT_S)
    container = _container(ctx)
    ctx.announce(f"POST /containers/{container.name}/stop?t={timeout}")
    container.stop(timeout=timeout)
    container.reload()
    state = _state(container)
    data = {**_state_data(state), "exit_code": state.get("ExitCode")}
    if state.get("Running"):
        reason = f"container '{container.name}' is still running after stop"
        return _Outcome(status=ExecutionStatus.FAILED, reason=reason, data=data)
    return _Outcome(stdout=f"{container.name} {data['status']}", data=data)


def _restart(ctx: _Context) -> _Outcome:
    timeout = _int_param(ctx, "timeout", DEFAULT_STOP_TIMEOUT_S)
    container = _container(ctx)
    before = _state(container).get("StartedAt")
    ctx.announce(f"POST /containers/{container.name}/restart?t={timeout}")
    container.restart(timeout=timeout)
    outcome = _expect_running(container, action="restart")
    after = outcome.data["started_at"]
    outcome.data.update(started_at_before=before, started_at_after=after)
    if outcome.status is ExecutionStatus.OK and before == after:
        outcome.status = ExecutionStatus.FAILED
        outcome.reason = f"container '{container.name}' kept StartedAt {after} through restart"
    return outcome


def _expect_running(container: Container, *, action: str) -> _Outcome:
    container.reload()
    state = _state(container)
    data = _state_data(state)
    if not state.get("Running"):
        reason = (
            f"container '{container.name}' is {state.get('Status')} after {action} "
            f"(exit code {state.get('ExitCode')})"
        )
        return _Outcome(status=ExecutionStatus.FAILED, reason=reason, data=data)
    return _Outcome(stdout=f"{container.name} running since {data['started_at']}", data=data)


def _exec(ctx: _Context) -> _Outcome:
    argv = _argv_param(ctx)
    ctx.argv = tuple(argv)
    container = _container(ctx)
    api = ctx.engine.api
    ctx.announce(f"POST /containers/{container.name}/exec")
    exec_id: str = api.exec_create(container.id, argv, stdout=True, stderr=True)["Id"]
    ctx.announce(f"POST /containers/{container.name}/exec; POST /exec/{exec_id}/start")
    # The SDK's exec reader polls with no timeout; reading the raw socket keeps our deadline.
    sock = api.exec_start(exec_id, socket=True)
    try:
        streams, overflow = _read_frames(sock, ctx.deadline, limit=ctx.call.output_cap * 4)
    finally:
        sock.close()
    exit_code = _exec_exit_code(ctx, exec_id)
    stdout, stdout_cut = cap_output(
        streams[STDOUT_STREAM].decode(errors="replace"), ctx.call.output_cap
    )
    stderr, stderr_cut = cap_output(
        streams[STDERR_STREAM].decode(errors="replace"), ctx.call.output_cap
    )
    outcome = _Outcome(
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


def _read_frames(sock: Any, deadline: float, *, limit: int) -> tuple[dict[int, bytearray], bool]:
    """Split the multiplexed exec stream into stdout/stderr, keeping at most `limit` bytes each."""
    streams = {STDOUT_STREAM: bytearray(), STDERR_STREAM: bytearray()}
    overflow = False
    while (header := _read_exactly(sock, FRAME_HEADER.size, deadline)) is not None:
        stream, size = FRAME_HEADER.unpack(header)
        payload = _read_exactly(sock, size, deadline) or b""
        buffer = streams.get(stream, streams[STDOUT_STREAM])
        room = max(limit - len(buffer), 0)
        overflow = overflow or len(payload) > room
        buffer += payload[:room]
    return streams, overflow


def _read_exactly(sock: Any, size: int, deadline: float) -> bytes | None:
    """`size` bytes from the socket, or None at the end of the stream."""
    data = bytearray()
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            raise _Stop(ExecutionStatus.TIMEOUT, "exec output did not end before the deadline")
        chunk: bytes | None = socket_read(sock, size - len(data))
        if chunk is None:  # an interrupted read: try again
            continue
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _exec_exit_code(ctx: _Context, exec_id: str) -> int | None:
    # The stream can close a moment before the engine records the exit code.
    while True:
        info = ctx.engine.api.exec_inspect(exec_id)
        if not info.get("Running"):
            exit_code: int | None = info.get("ExitCode")
            return exit_code
        if time.monotonic() > ctx.deadline:
            raise _Stop(ExecutionStatus.TIMEOUT, "exec gave no exit code before the deadline")
        time.sleep(0.01)


_OPERATIONS: dict[str, Callable[[_Context], _Outcome]] = {
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
