"""The in-memory executor passes the shared conformance suite and models target state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.lib.execution.models import ExecutionStatus, OperationCall
from shared.lib.executors.fake import FakeExecutor, ScriptedReply
from shared.lib.targets.models import DockerTarget, SshTarget
from tests.conformance.contract import ConformanceCase, ExecutorContract

WEB = DockerTarget(name="web", environment="dev", docker_host="local", docker_url="unix:///x")
GHOST = WEB.model_copy(update={"name": "ghost"})
BOX = SshTarget(name="box", environment="dev", host="127.0.0.1", unit="app.service")


class Clock:
    """A clock the test moves by hand, so start times differ without waiting."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def fake() -> FakeExecutor:
    return FakeExecutor(kind="docker", clock=Clock())


@pytest.fixture
def case(fake: FakeExecutor) -> ConformanceCase:
    fake.unreachable.add("ghost")
    fake.target("web").logs = [f"line {n}" for n in range(5000)]
    fake.script("web", ["sleep", "60"], ScriptedReply(delay_s=60))
    fake.script("web", ["false"], ScriptedReply(exit_code=1, stderr="nope"))
    return ConformanceCase(
        executor=fake,
        read_call=OperationCall(operation="inspect", target=WEB),
        unreachable_call=OperationCall(operation="inspect", target=GHOST),
        big_output_call=OperationCall(
            operation="logs", target=WEB, params={"tail": 5000}, output_cap=1000
        ),
        slow_call=OperationCall(
            operation="exec", target=WEB, params={"argv": ["sleep", "60"]}, timeout_s=0.2
        ),
        failing_call=OperationCall(operation="exec", target=WEB, params={"argv": ["false"]}),
    )


class TestFakeConformance(ExecutorContract):
    pass


async def test_restart_changes_started_at_and_counts(fake: FakeExecutor) -> None:
    before = fake.target("web").started_at
    result = await fake.execute(OperationCall(operation="restart", target=WEB))
    assert result.ok
    assert fake.target("web").started_at > before
    assert fake.target("web").restart_count == 1


async def test_stop_then_start_flips_state_and_health(fake: FakeExecutor) -> None:
    await fake.execute(OperationCall(operation="stop", target=WEB))
    assert not fake.target("web").running
    health = await fake.execute(OperationCall(operation="health", target=WEB))
    assert health.status is ExecutionStatus.FAILED and health.data["running"] is False
    await fake.execute(OperationCall(operation="start", target=WEB))
    health = await fake.execute(OperationCall(operation="health", target=WEB))
    assert health.ok and health.data == {"running": True, "healthy": True}


async def test_logs_return_the_last_lines(fake: FakeExecutor) -> None:
    fake.target("web").logs = ["a", "b", "c"]
    result = await fake.execute(OperationCall(operation="logs", target=WEB, params={"tail": 2}))
    assert result.stdout == "b\nc\n"


async def test_commands_echo_or_follow_the_script(fake: FakeExecutor) -> None:
    fake.script("box", ["uptime"], ScriptedReply(stdout=" 10:00 up 3 days\n"))
    echoed = await fake.execute(
        OperationCall(operation="run_command", target=BOX, params={"argv": ["echo", "hi"]})
    )
    scripted = await fake.execute(
        OperationCall(operation="run_command", target=BOX, params={"argv": ["uptime"]})
    )
    assert echoed.stdout == "echo hi\n" and echoed.invocation.argv == ("echo", "hi")
    assert scripted.stdout == " 10:00 up 3 days\n" and scripted.exit_code == 0


async def test_exec_in_a_stopped_container_fails(fake: FakeExecutor) -> None:
    fake.target("web").running = False
    result = await fake.execute(
        OperationCall(operation="exec", target=WEB, params={"argv": ["ls"]})
    )
    assert result.status is ExecutionStatus.FAILED and "not running" in (result.reason or "")


async def test_every_call_is_recorded(fake: FakeExecutor) -> None:
    calls = [
        OperationCall(operation="inspect", target=WEB),
        OperationCall(operation="restart", target=WEB, params={"timeout": 5}),
    ]
    for call in calls:
        await fake.execute(call)
    assert fake.calls == calls


async def test_unsupported_kind_operations_are_refused() -> None:
    docker_only = FakeExecutor(kind="docker", operations={"restart"})
    assert docker_only.supports("restart") and not docker_only.supports("service_restart")
    result = await docker_only.execute(OperationCall(operation="service_restart", target=WEB))
    assert result.status is ExecutionStatus.REFUSED


async def test_http_check_follows_scripted_statuses(fake: FakeExecutor) -> None:
    fake.http_statuses["http://web/health"] = 503
    result = await fake.execute(
        OperationCall(operation="http_check", target=WEB, params={"url": "http://web/health"})
    )
    assert result.status is ExecutionStatus.FAILED and result.data["status_code"] == 503


async def test_missing_target_fails(fake: FakeExecutor) -> None:
    fake.missing.add("web")
    result = await fake.execute(OperationCall(operation="inspect", target=WEB))
    assert result.status is ExecutionStatus.FAILED and "does not exist" in (result.reason or "")
