"""An in-memory executor with scriptable targets, for tests and dry runs; it records every call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.lib.execution.models import (
    ExecutionResult,
    ExecutionStatus,
    Invocation,
    OperationCall,
    cap_output,
)

ALL_OPERATIONS = frozenset(
    {
        "list", "inspect", "logs", "stats", "health", "start", "stop", "restart", "exec",
        "run_command", "service_status", "service_restart", "journal_tail", "disk_usage",
        "uptime", "http_check",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ScriptedReply:
    """What a command prints and returns; `delay_s` makes it slow."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    delay_s: float = 0.0


@dataclass
class FakeTarget:
    """The state of one target the fake pretends to manage."""

    running: bool = True
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    restart_count: int = 0
    logs: list[str] = field(default_factory=list)
    healthy: bool = True


@dataclass
class _Outcome:
    status: ExecutionStatus = ExecutionStatus.OK
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class FakeExecutor:
    """Implements the catalog operations against in-memory targets."""

    def __init__(
        self,
        *,
        kind: str = "fake",
        operations: Iterable[str] = ALL_OPERATIONS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kind = kind
        self.operations = frozenset(operations)
        self.targets: dict[str, FakeTarget] = {}
        self.unreachable: set[str] = set()
        self.missing: set[str] = set()
        self.delays: dict[str, float] = {}
        self.http_statuses: dict[str, int] = {}
        self.calls: list[OperationCall] = []
        self._replies: dict[tuple[str, tuple[str, ...]], ScriptedReply] = {}
        self._clock = clock
        self.closed = False

    def target(self, name: str) -> FakeTarget:
        """The state of `name`, created running on first use."""
        return self.targets.setdefault(name, FakeTarget(started_at=self._clock()))

    def script(self, target: str, argv: Iterable[str], reply: ScriptedReply) -> None:
        """Reply to exactly this argv on this target (run_command and exec)."""
        self._replies[(target, tuple(argv))] = reply

    def supports(self, operation: str) -> bool:
        return operation in self.operations

    async def aclose(self) -> None:
        self.closed = True

    async def execute(self, call: OperationCall) -> ExecutionResult:
        self.calls.append(call)
        started = time.perf_counter()
        try:
            outcome = await asyncio.wait_for(self._perform(call), timeout=call.timeout_s)
        except TimeoutError:
            outcome = _Outcome(
                status=ExecutionStatus.TIMEOUT,
                reason=f"{call.operation} did not finish within {call.timeout_s:g}s",
            )
        return self._result(call, outcome, started)

    async def _perform(self, call: OperationCall) -> _Outcome:
        name = call.target.name
        if not self.supports(call.operation):
            return _Outcome(
                status=ExecutionStatus.REFUSED,
                reason=f"the {self.kind} executor does not implement '{call.operation}'",
            )
        if name in self.unreachable:
            return _Outcome(status=ExecutionStatus.UNREACHABLE, reason=f"{name} does not answer")
        delay = self.delays.get(name, 0.0)
        if delay:
            await asyncio.sleep(delay)  # simulates a slow backend; the caller's timeout bounds it
        if name in self.missing and call.operation != "http_check":
            return _Outcome(status=ExecutionStatus.FAILED, reason=f"{name} does not exist")
        return await self._operation(call)

    async def _operation(self, call: OperationCall) -> _Outcome:
        handlers: dict[str, Callable[[OperationCall], _Outcome]] = {
            "start": self._start,
            "stop": self._stop,
            "restart": self._restart,
            "service_restart": self._restart,
            "logs": self._logs,
            "journal_tail": self._logs,
            "health": self._health,
            "service_status": self._health,
            "inspect": self._inspect,
            "list": self._list,
            "http_check": self._http_check,
        }
        if call.operation in ("exec", "run_command"):
            return await self._command(call)
        handler = handlers.get(call.operation, self._report)
        return handler(call)

    def _start(self, call: OperationCall) -> _Outcome:
        state = self.target(call.target.name)
        if not state.running:
            state.running, state.started_at = True, self._clock()
        return _Outcome(data={"running": True})

    def _stop(self, call: OperationCall) -> _Outcome:
        self.target(call.target.name).running = False
        return _Outcome(data={"running": False})

    def _restart(self, call: OperationCall) -> _Outcome:
        state = self.target(call.target.name)
        state.running, state.started_at = True, self._clock()
        state.restart_count += 1
        return _Outcome(data={"running": True, "started_at": state.started_at.isoformat()})

    def _logs(self, call: OperationCall) -> _Outcome:
        lines = self.target(call.target.name).logs
        count = int(call.params.get("tail", call.params.get("lines", 100)))
        shown = lines[-count:] if count else []
        return _Outcome(stdout="".join(f"{line}\n" for line in shown), data={"lines": len(shown)})

    def _health(self, call: OperationCall) -> _Outcome:
        state = self.target(call.target.name)
        healthy = state.running and state.healthy
        outcome = _Outcome(data={"running": state.running, "healthy": healthy})
        if not healthy:
            outcome.status = ExecutionStatus.FAILED
            outcome.reason = f"{call.target.name} is {'unhealthy' if state.running else 'stopped'}"
        return outcome

    def _inspect(self, call: OperationCall) -> _Outcome:
        state = self.target(call.target.name)
        return _Outcome(
            data={
                "running": state.running,
                "started_at": state.started_at.isoformat(),
                "restart_count": state.restart_count,
            }
        )

    def _list(self, call: OperationCall) -> _Outcome:
        names = sorted(n for n, s in self.targets.items() if s.running or call.params.get("all"))
        return _Outcome(stdout="".join(f"{n}\n" for n in names), data={"targets": names})

    def _http_check(self, call: OperationCall) -> _Outcome:
        url = str(call.params.get("url", ""))
        status = self.http_statuses.get(url, 200)
        expected = int(call.params.get("expected_status", 200))
        outcome = _Outcome(data={"url": url, "status_code": status, "expected_status": expected})
        if status != expected:
            outcome.status = ExecutionStatus.FAILED
            outcome.reason = f"expected HTTP {expected}, got {status}"
        return outcome

    def _report(self, call: OperationCall) -> _Outcome:
        # stats, disk_usage, uptime: read-only reports whose content tests rarely care about.
        return _Outcome(stdout=f"{call.operation} of {call.target.name}: ok\n")

    async def _command(self, call: OperationCall) -> _Outcome:
        argv = tuple(str(arg) for arg in call.params.get("argv", ()))
        state = self.target(call.target.name)
        if call.operation == "exec" and not state.running:
            return _Outcome(
                status=ExecutionStatus.FAILED, reason=f"{call.target.name} is not running"
            )
        reply = self._replies.get((call.target.name, argv))
        if reply is None:
            return _Outcome(stdout=" ".join(argv) + "\n", exit_code=0)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        outcome = _Outcome(stdout=reply.stdout, stderr=reply.stderr, exit_code=reply.exit_code)
        if reply.exit_code != 0:
            outcome.status = ExecutionStatus.FAILED
            outcome.reason = f"exited with status {reply.exit_code}"
        return outcome

    def _result(self, call: OperationCall, outcome: _Outcome, started: float) -> ExecutionResult:
        stdout, cut_out = cap_output(outcome.stdout, call.output_cap)
        stderr, cut_err = cap_output(outcome.stderr, call.output_cap)
        argv = call.params.get("argv")
        return ExecutionResult(
            status=outcome.status,
            operation=call.operation,
            target=call.target.name,
            invocation=Invocation(
                kind="fake",
                endpoint=f"fake://{call.target.name}",
                call=f"{call.operation} {call.target.name}",
                argv=tuple(argv) if argv else None,
            ),
            exit_code=outcome.exit_code,
            stdout=stdout,
            stderr=stderr,
            truncated=cut_out or cut_err,
            duration_ms=(time.perf_counter() - started) * 1000,
            reason=outcome.reason,
            data=outcome.data,
        )
