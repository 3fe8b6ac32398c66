"""The Docker executor: checks a call, runs its operation on a worker thread under the call's
deadline, and turns the outcome or the engine's error into an ExecutionResult.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from docker.errors import APIError, DockerException, NotFound

from shared.lib.execution.models import ExecutionResult, ExecutionStatus, Invocation, OperationCall
from shared.lib.executors.docker.context import Context, Outcome, Stop, failure
from shared.lib.executors.docker.operations import OPERATIONS
from shared.lib.executors.docker.pool import DockerClientPool
from shared.lib.targets.models import DockerTarget


class DockerExecutor:
    """Executor for Docker targets: list, inspect, logs, stats, health, start/stop/restart, exec."""

    kind: str = "docker"

    # docker-py blocks a thread per call, and a stop or restart holds one for its whole grace
    # period. Each mutation is now preceded by a read of its target (the drift check), so with
    # few threads the reads of other workflows queued behind long restarts on other targets.
    def __init__(self, *, max_workers: int = 32, api_timeout_s: int = 60) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="docker-exec")
        self._clients = DockerClientPool(api_timeout_s=api_timeout_s)

    def supports(self, operation: str) -> bool:
        return operation in OPERATIONS

    async def execute(self, call: OperationCall) -> ExecutionResult:
        started = time.perf_counter()
        target = call.target
        if not isinstance(target, DockerTarget):
            reason = f"docker executor cannot run on {target.kind} target '{target.name}'"
            return _refused(call, reason, endpoint="", started=started)
        if not self.supports(call.operation):
            reason = f"operation '{call.operation}' is not supported by the docker executor"
            return _refused(call, reason, endpoint=target.docker_url, started=started)
        ctx = Context(call=call, target=target, deadline=time.monotonic() + call.timeout_s)
        future = asyncio.get_running_loop().run_in_executor(self._pool, self._run, ctx)
        try:
            outcome = await asyncio.wait_for(future, timeout=call.timeout_s)
        except TimeoutError:
            outcome = _timed_out(ctx)
        return _result(ctx, outcome, started)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._clients.close()

    def _run(self, ctx: Context) -> Outcome:
        host, url = ctx.target.docker_host, ctx.target.docker_url
        try:
            ctx.client = self._clients.client(ctx)
        except DockerException as exc:
            reason = f"docker host '{host}' at {url} is unreachable: {exc}"
            return failure(ExecutionStatus.UNREACHABLE, reason)
        try:
            return OPERATIONS[ctx.call.operation](ctx)
        except Stop as stop:
            return failure(stop.status, stop.reason)
        except NotFound:
            return failure(
                ExecutionStatus.FAILED, f"container '{ctx.ref}' not found on host '{host}'"
            )
        except APIError as exc:
            reason = f"docker engine on '{host}' rejected {ctx.api_call}: {exc.explanation or exc}"
            return failure(ExecutionStatus.FAILED, reason)
        except requests.exceptions.ConnectionError as exc:
            reason = f"docker host '{host}' at {url} is unreachable: {exc}"
            return failure(ExecutionStatus.UNREACHABLE, reason)
        except requests.exceptions.Timeout:
            return _timed_out(ctx)
        except DockerException as exc:
            return failure(ExecutionStatus.FAILED, f"docker call {ctx.api_call} failed: {exc}")


def _timed_out(ctx: Context) -> Outcome:
    reason = f"{ctx.call.operation} on '{ctx.target.name}' took longer than {ctx.call.timeout_s}s"
    if ctx.argv is not None:
        reason += "; the command may still be running in the container"
    return failure(ExecutionStatus.TIMEOUT, reason)


def _result(ctx: Context, outcome: Outcome, started: float) -> ExecutionResult:
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
