"""The conformance suite every executor passes: subclass ExecutorContract and give a `case`.

Each implementation's test module defines a fixture named `case` that returns a
ConformanceCase built on the real backend (Docker Engine, sshd) or the in-memory fake.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.lib.execution.models import ExecutionStatus, OperationCall
from shared.lib.execution.protocol import Executor


@dataclass(frozen=True)
class ConformanceCase:
    executor: Executor
    read_call: OperationCall
    """A read-only operation that succeeds on a reachable target."""
    unreachable_call: OperationCall
    """The same kind of operation aimed at a target nobody answers for."""
    big_output_call: OperationCall
    """Produces more output than its `output_cap`."""
    slow_call: OperationCall
    """Runs longer than its `timeout_s`."""
    failing_call: OperationCall
    """Reaches the target but the operation itself fails (non-zero exit, missing container...)."""


class ExecutorContract:
    async def test_executor_satisfies_protocol(self, case: ConformanceCase) -> None:
        assert isinstance(case.executor, Executor)
        assert case.executor.supports(case.read_call.operation)
        assert not case.executor.supports("no-such-operation")

    async def test_read_operation_returns_ok_with_invocation(self, case: ConformanceCase) -> None:
        result = await case.executor.execute(case.read_call)
        assert result.status is ExecutionStatus.OK, result
        assert result.operation == case.read_call.operation
        assert result.target == case.read_call.target.name
        assert result.invocation.call
        assert result.duration_ms > 0

    async def test_unsupported_operation_is_refused_as_data(self, case: ConformanceCase) -> None:
        call = case.read_call.model_copy(update={"operation": "no-such-operation"})
        result = await case.executor.execute(call)
        assert result.status is ExecutionStatus.REFUSED
        assert result.reason and "no-such-operation" in result.reason

    async def test_unreachable_target_is_data(self, case: ConformanceCase) -> None:
        result = await case.executor.execute(case.unreachable_call)
        assert result.status is ExecutionStatus.UNREACHABLE, result
        assert result.reason

    async def test_output_over_cap_is_truncated_and_flagged(self, case: ConformanceCase) -> None:
        result = await case.executor.execute(case.big_output_call)
        assert result.truncated, result
        assert len(result.stdout) <= case.big_output_call.output_cap

    async def test_timeout_is_data_and_executor_stays_usable(self, case: ConformanceCase) -> None:
        result = await case.executor.execute(case.slow_call)
        assert result.status is ExecutionStatus.TIMEOUT, result
        assert result.duration_ms < (case.slow_call.timeout_s + 5) * 1000
        after = await case.executor.execute(case.read_call)
        assert after.status is ExecutionStatus.OK, after

    async def test_failure_is_data(self, case: ConformanceCase) -> None:
        result = await case.executor.execute(case.failing_call)
        assert result.status is ExecutionStatus.FAILED, result
        assert result.reason or result.stderr or result.exit_code not in (None, 0)
