"""DockerExecutor on a real Docker Engine: the shared conformance suite, then each operation."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from docker.models.containers import Container

from shared.lib.execution.models import ExecutionStatus, OperationCall
from shared.lib.executors.docker import DockerExecutor
from shared.lib.targets.models import DockerTarget
from tests.conformance.contract import ConformanceCase, ExecutorContract
from tests.testbed.docker_fixtures import ContainerFactory

pytestmark = pytest.mark.docker

UNREACHABLE_URL = "tcp://127.0.0.1:1"
DEADLINE_S = 15.0


def _target(docker_url: str, container: str | None = None, **labels: str) -> DockerTarget:
    return DockerTarget(
        name="web",
        environment="test",
        docker_host="local",
        docker_url=docker_url,
        container=container,
        labels=labels,
    )


def _call(target: DockerTarget, operation: str, **params: Any) -> OperationCall:
    return OperationCall(operation=operation, target=target, params=params, timeout_s=20)


def _state(container: Container) -> dict[str, Any]:
    container.reload()
    state: dict[str, Any] = container.attrs["State"]
    return state


@pytest.fixture
async def executor() -> AsyncIterator[DockerExecutor]:
    executor = DockerExecutor()
    yield executor
    await executor.aclose()


@pytest.fixture
def web(container_factory: ContainerFactory) -> Container:
    return container_factory("web")


@pytest.fixture
def target(web: Container, docker_url: str) -> DockerTarget:
    return _target(docker_url, web.name)


@pytest.fixture
def case(executor: DockerExecutor, target: DockerTarget, docker_run_prefix: str) -> ConformanceCase:
    exec_call = _call(target, "exec")
    return ConformanceCase(
        executor=executor,
        read_call=_call(target, "inspect"),
        unreachable_call=_call(
            target.model_copy(update={"docker_url": UNREACHABLE_URL}), "inspect"
        ),
        big_output_call=exec_call.model_copy(
            update={"params": {"argv": ["seq", "1", "200000"]}, "output_cap": 1000}
        ),
        slow_call=exec_call.model_copy(
            update={"params": {"argv": ["sleep", "30"]}, "timeout_s": 1.5}
        ),
        failing_call=_call(
            target.model_copy(update={"container": f"{docker_run_prefix}nope"}), "inspect"
        ),
    )


class TestDockerConformance(ExecutorContract):
    async def test_failure_names_the_missing_container(self, case: ConformanceCase) -> None:
        target = case.failing_call.target
        assert isinstance(target, DockerTarget)
        result = await case.executor.execute(case.failing_call)
        assert result.reason == f"container '{target.container}' not found on host 'local'"


async def test_restart_changes_started_at(
    executor: DockerExecutor, target: DockerTarget, web: Container
) -> None:
    before = _state(web)["StartedAt"]
    result = await executor.execute(_call(target, "restart", timeout=1))
    assert result.status is ExecutionStatus.OK, result
    state = _state(web)
    assert state["Running"] is True
    assert state["StartedAt"] != before
    assert result.data["started_at_before"] == before
    assert result.data["started_at_after"] == state["StartedAt"]
    assert result.invocation.call == f"POST /containers/{web.name}/restart?t=1"
    assert result.invocation.endpoint == target.docker_url


async def test_stop_then_start(
    executor: DockerExecutor, target: DockerTarget, web: Container
) -> None:
    stopped = await executor.execute(_call(target, "stop", timeout=2))
    assert stopped.status is ExecutionStatus.OK, stopped
    assert _state(web)["Running"] is False
    assert stopped.data["running"] is False

    started = await executor.execute(_call(target, "start"))
    assert started.status is ExecutionStatus.OK, started
    assert _state(web)["Running"] is True
    assert started.invocation.call == f"POST /containers/{web.name}/start"


async def test_logs_tail_returns_tick_lines(executor: DockerExecutor, target: DockerTarget) -> None:
    deadline = time.monotonic() + DEADLINE_S
    result = await executor.execute(_call(target, "logs", tail=2))
    while result.stdout.count("tick") < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        result = await executor.execute(_call(target, "logs", tail=2))
    assert result.status is ExecutionStatus.OK, result
    assert result.stdout.splitlines() == ["tick", "tick"]
    assert result.data["lines"] == 2
    assert "tail=2" in result.invocation.call


async def test_logs_since_the_future_is_empty(
    executor: DockerExecutor, target: DockerTarget
) -> None:
    result = await executor.execute(_call(target, "logs", since="2999-01-01T00:00:00+00:00"))
    assert result.status is ExecutionStatus.OK, result
    assert result.stdout == ""


async def test_logs_with_a_bad_tail_is_refused(
    executor: DockerExecutor, target: DockerTarget
) -> None:
    result = await executor.execute(_call(target, "logs", tail="lots"))
    assert result.status is ExecutionStatus.REFUSED
    assert result.reason and "tail" in result.reason


async def test_stats_returns_memory_figures(executor: DockerExecutor, target: DockerTarget) -> None:
    result = await executor.execute(_call(target, "stats"))
    assert result.status is ExecutionStatus.OK, result
    assert result.data["memory_usage_bytes"] > 0
    assert result.data["memory_limit_bytes"] > result.data["memory_usage_bytes"]
    assert result.data["cpu_percent"] >= 0


@pytest.mark.parametrize("operation", ["stats", "health"])
async def test_stats_and_health_of_a_stopped_container_fail(
    executor: DockerExecutor, target: DockerTarget, web: Container, operation: str
) -> None:
    web.stop(timeout=1)
    result = await executor.execute(_call(target, operation))
    assert result.status is ExecutionStatus.FAILED
    assert result.reason and "exited" in result.reason
    if operation == "health":  # the probe still says what it saw
        assert result.data["running"] is False and result.data["status"] == "exited"


async def test_health_reports_healthcheck_status(
    executor: DockerExecutor, container_factory: ContainerFactory, docker_url: str
) -> None:
    container = container_factory(http=True, healthcheck=True)
    target = _target(docker_url, container.name)
    deadline = time.monotonic() + DEADLINE_S
    result = await executor.execute(_call(target, "health"))
    while result.data.get("health") != "healthy" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        result = await executor.execute(_call(target, "health"))
    assert result.status is ExecutionStatus.OK, result
    assert result.data["health"] == "healthy"
    assert result.data["running"] is True
    assert result.data["started_at"] == _state(container)["StartedAt"]


async def test_health_without_healthcheck(executor: DockerExecutor, target: DockerTarget) -> None:
    result = await executor.execute(_call(target, "health"))
    assert result.status is ExecutionStatus.OK, result
    assert result.data["status"] == "running"
    assert result.data["health"] is None


async def test_exec_returns_output_and_exit_code(
    executor: DockerExecutor, target: DockerTarget
) -> None:
    result = await executor.execute(_call(target, "exec", argv=["echo", "hello", "world"]))
    assert result.status is ExecutionStatus.OK, result
    assert result.exit_code == 0
    assert result.stdout == "hello world\n"
    assert result.invocation.argv == ("echo", "hello", "world")
    assert not result.truncated


async def test_exec_failing_command_is_failed_with_exit_code(
    executor: DockerExecutor, target: DockerTarget
) -> None:
    result = await executor.execute(_call(target, "exec", argv=["ls", "/no-such-dir"]))
    assert result.status is ExecutionStatus.FAILED
    assert result.exit_code not in (None, 0)
    assert "no-such-dir" in result.stderr
    assert result.stdout == ""


async def test_exec_in_a_stopped_container_fails(
    executor: DockerExecutor, target: DockerTarget, web: Container
) -> None:
    web.stop(timeout=1)
    result = await executor.execute(_call(target, "exec", argv=["true"]))
    assert result.status is ExecutionStatus.FAILED
    assert result.reason and "not running" in result.reason


async def test_exec_without_argv_is_refused(executor: DockerExecutor, target: DockerTarget) -> None:
    result = await executor.execute(_call(target, "exec", argv="echo hi"))
    assert result.status is ExecutionStatus.REFUSED
    assert result.reason and "argv" in result.reason


async def test_label_selection_picks_the_one_match(
    executor: DockerExecutor, container_factory: ContainerFactory, docker_url: str
) -> None:
    group = secrets.token_hex(4)
    api = container_factory(labels={"dat.group": group, "dat.role": "api"})
    worker = container_factory(labels={"dat.group": group, "dat.role": "worker"})

    one = await executor.execute(
        _call(_target(docker_url, **{"dat.group": group, "dat.role": "api"}), "restart", timeout=1)
    )
    assert one.status is ExecutionStatus.OK, one
    assert one.invocation.call == f"POST /containers/{api.name}/restart?t=1"
    assert _state(api)["StartedAt"] == one.data["started_at_after"]

    both = await executor.execute(_call(_target(docker_url, **{"dat.group": group}), "inspect"))
    assert both.status is ExecutionStatus.FAILED
    names = ", ".join(sorted([api.name or "", worker.name or ""]))
    assert both.reason and f"matched 2: {names}" in both.reason

    none = await executor.execute(_call(_target(docker_url, **{"dat.group": "other"}), "inspect"))
    assert none.status is ExecutionStatus.FAILED
    assert none.reason and "matched 0" in none.reason


async def test_list_filters_by_labels(
    executor: DockerExecutor, container_factory: ContainerFactory, docker_url: str
) -> None:
    group = secrets.token_hex(4)
    made = {container_factory(labels={"dat.group": group}).name for _ in range(2)}
    result = await executor.execute(_call(_target(docker_url, **{"dat.group": group}), "list"))
    assert result.status is ExecutionStatus.OK, result
    assert {row["name"] for row in result.data["containers"]} == made
    assert all(row["state"] == "running" for row in result.data["containers"])


async def test_target_without_container_or_labels_is_refused(
    executor: DockerExecutor, docker_url: str
) -> None:
    result = await executor.execute(_call(_target(docker_url), "inspect"))
    assert result.status is ExecutionStatus.REFUSED
    assert result.reason and "neither a container nor labels" in result.reason


async def test_one_executor_serves_several_hosts(
    executor: DockerExecutor, target: DockerTarget
) -> None:
    dead = target.model_copy(update={"docker_url": UNREACHABLE_URL, "docker_host": "dead"})
    results = await asyncio.gather(
        executor.execute(_call(target, "health")), executor.execute(_call(dead, "health"))
    )
    assert [r.status for r in results] == [ExecutionStatus.OK, ExecutionStatus.UNREACHABLE]
    assert results[1].reason and "dead" in results[1].reason
