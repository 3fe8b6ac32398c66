"""The universal command interface on the real Docker Engine: operations go through the catalog
and the runner (validation, target resolution, protection, policy) before the executor, and a
protected container is refused without any call reaching the engine."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from shared.lib.catalog import load_catalog
from shared.lib.commands import load_command_policy
from shared.lib.execution.models import ExecutionResult, ExecutionStatus, OperationCall
from shared.lib.execution.runner import OperationRunner
from shared.lib.executors.docker import DockerExecutor
from shared.lib.targets import load_targets
from tests.helpers import CONFIG_DIR
from tests.testbed.docker_fixtures import ContainerFactory

pytestmark = pytest.mark.docker


class CountingDockerExecutor(DockerExecutor):
    """The real executor, counting the calls that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[OperationCall] = []

    async def execute(self, call: OperationCall) -> ExecutionResult:
        self.received.append(call)
        return await super().execute(call)


@pytest.fixture
def app_container(container_factory: ContainerFactory) -> Container:
    return container_factory("app")


@pytest.fixture
def vault_container(container_factory: ContainerFactory) -> Container:
    return container_factory("vault")


@pytest.fixture
async def runner_and_executor(
    tmp_path: Path, docker_url: str, app_container: Container, vault_container: Container
) -> AsyncIterator[tuple[OperationRunner, CountingDockerExecutor]]:
    environments = tmp_path / "environments.yml"
    environments.write_text(
        "version: 1\n"
        "environments:\n"
        "  dev:\n"
        f"    docker_hosts: {{local: '{docker_url}'}}\n"
        "    services:\n"
        f"      app: {{kind: docker, docker_host: local, container: {app_container.name}}}\n"
        f"      vault: {{kind: docker, docker_host: local, container: {vault_container.name},"
        " protected: true, protected_reason: secrets store}\n"
    )
    executor = CountingDockerExecutor()
    runner = OperationRunner(
        catalog=load_catalog(config_dir=CONFIG_DIR),
        targets=load_targets(config_dir=CONFIG_DIR, path=environments),
        policy=load_command_policy(config_dir=CONFIG_DIR),
        executors={"docker": executor},
    )
    yield runner, executor
    await executor.aclose()


def started_at(container: Container) -> str:
    container.reload()
    return str(container.attrs["State"]["StartedAt"])


async def run(runner: OperationRunner, operation: str, **params: Any) -> ExecutionResult:
    target = params.pop("target", "app")
    return await runner.run(operation=operation, target=target, environment="dev", params=params)


async def test_restart_stop_start_logs_and_stats_through_the_catalog(
    runner_and_executor: tuple[OperationRunner, CountingDockerExecutor], app_container: Container
) -> None:
    runner, _ = runner_and_executor
    before = started_at(app_container)

    restarted = await run(runner, "restart", timeout=1)
    assert restarted.status is ExecutionStatus.OK, restarted
    assert started_at(app_container) != before

    stopped = await run(runner, "stop", timeout=1)
    assert stopped.status is ExecutionStatus.OK, stopped
    app_container.reload()
    assert app_container.attrs["State"]["Running"] is False

    started = await run(runner, "start")
    assert started.status is ExecutionStatus.OK, started
    app_container.reload()
    assert app_container.attrs["State"]["Running"] is True

    logs = await run(runner, "logs", tail=5)
    assert logs.status is ExecutionStatus.OK, logs
    assert "tick" in logs.stdout

    stats = await run(runner, "stats")
    assert stats.status is ExecutionStatus.OK, stats
    assert stats.data["memory_usage_bytes"] > 0


async def test_catalog_bounds_are_enforced_before_the_engine(
    runner_and_executor: tuple[OperationRunner, CountingDockerExecutor],
) -> None:
    runner, executor = runner_and_executor
    result = await run(runner, "logs", tail=1_000_000)
    assert result.status is ExecutionStatus.REFUSED
    assert "tail" in (result.reason or "")
    assert executor.received == []


async def test_protected_container_is_refused_without_touching_the_engine(
    runner_and_executor: tuple[OperationRunner, CountingDockerExecutor],
    vault_container: Container,
    docker_client: docker.DockerClient,
) -> None:
    runner, executor = runner_and_executor
    before = started_at(vault_container)
    since_ns = time.time_ns()

    result = await run(runner, "restart", target="vault", timeout=1)

    assert result.status is ExecutionStatus.REFUSED
    assert "secrets store" in (result.reason or "")
    assert result.invocation.kind == "none"
    assert executor.received == []  # the executor, and so the engine, never saw it
    events = docker_client.events(
        since=since_ns // 1_000_000_000,
        until=int(time.time()) + 1,
        filters={"container": str(vault_container.id)},
        decode=True,
    )
    after_call = [e.get("Action") for e in events if int(e.get("timeNano", 0)) >= since_ns]
    assert after_call == []
    assert started_at(vault_container) == before
