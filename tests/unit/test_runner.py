"""The operation runner: refusals come back as data before any executor is touched, and
allowed calls go to the executor for the target's kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.catalog import Catalog, load_catalog
from shared.lib.commands import CommandPolicy, load_command_policy
from shared.lib.execution.models import ExecutionStatus, OperationCall
from shared.lib.execution.runner import OperationRunner, Refusal
from shared.lib.executors.fake import FakeExecutor
from shared.lib.targets import SelfIdentity, load_targets
from tests.helpers import CONFIG_DIR

ENVIRONMENTS = """\
environments:
  dev:
    docker_hosts: {local: "unix:///var/run/docker.sock"}
    services:
      web: {kind: docker, docker_host: local, container: web, health_url: "http://web:8080/health"}
      agent-db: {kind: docker, docker_host: local, container: agent-db, tags: [database]}
      cache: {kind: docker, docker_host: local, container: redis, protected: true}
  prod:
    ssh_hosts: {web1: {host: web1.prod.internal}}
    services:
      web: {kind: ssh, ssh_host: web1, unit: nginx.service}
      box: {kind: ssh, ssh_host: web1}
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(config_dir=CONFIG_DIR)


@pytest.fixture(scope="module")
def policy() -> CommandPolicy:
    return load_command_policy(config_dir=CONFIG_DIR)


@pytest.fixture
def docker() -> FakeExecutor:
    return FakeExecutor(kind="docker", operations={"list", "inspect", "logs", "stats", "health",
                                                   "start", "stop", "restart", "exec"})  # fmt: skip


@pytest.fixture
def ssh() -> FakeExecutor:
    return FakeExecutor(kind="ssh", operations={"run_command", "service_status", "restart",
                                                "start", "stop", "logs", "uptime"})  # fmt: skip


@pytest.fixture
def http() -> FakeExecutor:
    return FakeExecutor(kind="http", operations={"http_check"})


@pytest.fixture
def runner(
    tmp_path: Path,
    catalog: Catalog,
    policy: CommandPolicy,
    docker: FakeExecutor,
    ssh: FakeExecutor,
    http: FakeExecutor,
) -> OperationRunner:
    path = tmp_path / "environments.yml"
    path.write_text(ENVIRONMENTS, encoding="utf-8")
    identity = SelfIdentity(database_endpoints=frozenset({"agent-db:5432"}))
    targets = load_targets(config_dir=tmp_path, path=path, identity=identity, environ={})
    return OperationRunner(
        catalog=catalog,
        targets=targets,
        policy=policy,
        executors={"docker": docker, "ssh": ssh, "http": http},
    )


def _no_calls(*executors: FakeExecutor) -> bool:
    return all(not executor.calls for executor in executors)


async def test_restart_web_goes_to_docker_in_dev_and_ssh_in_prod(
    runner: OperationRunner, docker: FakeExecutor, ssh: FakeExecutor
) -> None:
    dev = await runner.run(operation="restart", target="web", environment="dev", params={})
    prod = await runner.run(operation="restart", target="web", environment="prod", params={})
    assert dev.ok and prod.ok
    assert [call.target.kind for call in docker.calls] == ["docker"]
    assert [call.target.kind for call in ssh.calls] == ["ssh"]
    assert docker.target("web").restart_count == 1 and ssh.target("web").restart_count == 1


async def test_call_carries_normalized_params_and_a_budget_with_grace(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    await runner.run(operation="stop", target="web", environment="dev", params={"timeout": "20"})
    (call,) = docker.calls
    assert call.params == {"timeout": 20}
    assert call.timeout_s == 50  # the operation's 30 s plus the 20 s grace period


async def test_mutation_of_the_agents_own_database_is_refused_before_any_executor(
    runner: OperationRunner, docker: FakeExecutor, ssh: FakeExecutor, http: FakeExecutor
) -> None:
    result = await runner.run(operation="restart", target="agent-db", environment=None, params={})
    assert result.status is ExecutionStatus.REFUSED
    assert "the agent's own database" in (result.reason or "")
    assert result.data["protection_reason"] == "the agent's own database"
    assert result.invocation.kind == "none"
    assert _no_calls(docker, ssh, http)


async def test_configured_protection_is_refused_too(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    result = await runner.run(operation="stop", target="cache", environment="dev", params={})
    assert result.status is ExecutionStatus.REFUSED and result.data["protected"] is True
    assert not docker.calls


async def test_reads_on_protected_targets_still_run(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    result = await runner.run(operation="logs", target="agent-db", environment="dev", params={})
    assert result.ok and len(docker.calls) == 1


async def test_command_policy_refusal_carries_the_rule(
    runner: OperationRunner, ssh: FakeExecutor
) -> None:
    result = await runner.run(
        operation="run_command", target="box", environment="prod", params={"argv": ["reboot"]}
    )
    assert result.status is ExecutionStatus.REFUSED
    assert result.data["rule_id"] == "power-state" and "power-state" in (result.reason or "")
    assert result.invocation.argv == ("reboot",)
    assert not ssh.calls


async def test_environment_allow_list_applies_to_the_targets_environment(
    runner: OperationRunner, ssh: FakeExecutor
) -> None:
    refused = await runner.run(
        operation="run_command", target="box", environment="prod", params={"argv": ["id"]}
    )
    allowed = await runner.run(
        operation="run_command", target="box", environment="prod", params={"argv": ["uptime"]}
    )
    assert refused.data["rule_id"] == "environment-allow-list"
    assert allowed.ok and allowed.stdout == "uptime\n"
    assert [call.params["argv"] for call in ssh.calls] == [["uptime"]]


async def test_exec_in_a_container_is_policed(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    result = await runner.run(
        operation="exec", target="web", environment="dev", params={"argv": ["sh", "-c", "id"]}
    )
    assert result.data["rule_id"] == "shell-interpreter" and not docker.calls


async def test_unknown_target_lists_known_ones(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    result = await runner.run(operation="restart", target="web2", environment=None, params={})
    assert result.status is ExecutionStatus.REFUSED
    assert (result.reason or "").startswith(
        "unknown target 'web2' (known: agent-db, box, cache, web)"
    )
    assert "add it to" in (result.reason or "") and not docker.calls


async def test_ambiguous_target_names_the_environments(runner: OperationRunner) -> None:
    result = await runner.run(operation="restart", target="web", environment=None, params={})
    assert result.status is ExecutionStatus.REFUSED
    assert result.data["environments"] == ["dev", "prod"]


async def test_param_out_of_bounds_is_refused_with_field_and_range(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    result = await runner.run(
        operation="logs", target="web", environment="dev", params={"tail": 100000}
    )
    assert result.status is ExecutionStatus.REFUSED
    assert result.data["field"] == "tail"
    assert "'tail'" in (result.reason or "") and "1..5000" in (result.reason or "")
    assert not docker.calls


async def test_unknown_operation_is_refused_with_known_list(runner: OperationRunner) -> None:
    result = await runner.run(operation="nuke", target="web", environment="dev", params={})
    assert result.status is ExecutionStatus.REFUSED
    assert "restart" in result.data["known"] and "'nuke'" in (result.reason or "")


async def test_operation_not_available_for_the_targets_kind(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    result = await runner.run(
        operation="service_restart", target="web", environment="dev", params={}
    )
    assert result.status is ExecutionStatus.REFUSED
    assert "docker targets" in (result.reason or "") and "ssh" in (result.reason or "")
    assert not docker.calls


async def test_missing_executor_is_refused(runner: OperationRunner) -> None:
    # The ssh fake here does not implement journal_tail, as a partial deployment might not.
    result = await runner.run(operation="journal_tail", target="box", environment="prod", params={})
    assert result.status is ExecutionStatus.REFUSED and "no ssh executor" in (result.reason or "")


async def test_http_check_probes_the_health_url_through_the_http_executor(
    runner: OperationRunner, http: FakeExecutor, docker: FakeExecutor
) -> None:
    result = await runner.run(operation="http_check", target="web", environment="dev", params={})
    assert result.ok
    (call,) = http.calls
    assert call.target.kind == "http" and call.target.name == "web"
    assert call.params["url"] == "http://web:8080/health"
    assert call.timeout_s == 10  # 5 s budget plus the 5 s probe timeout
    assert not docker.calls


async def test_http_check_without_any_url_is_refused(runner: OperationRunner) -> None:
    result = await runner.run(operation="http_check", target="box", environment="prod", params={})
    assert result.status is ExecutionStatus.REFUSED and result.data["field"] == "url"


def test_prepare_is_pure_and_returns_the_call(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    prepared = runner.prepare(operation="logs", target="web", environment="dev", params={})
    assert isinstance(prepared, OperationCall)
    assert prepared.params == {"tail": 100} and prepared.target.kind == "docker"
    refused = runner.prepare(operation="stop", target="cache", environment="dev", params={})
    assert isinstance(refused, Refusal) and refused.environment == "dev"
    assert not docker.calls


async def test_run_call_checks_a_prepared_call_again(
    runner: OperationRunner, docker: FakeExecutor
) -> None:
    prepared = runner.prepare(operation="restart", target="web", environment="dev", params={})
    assert isinstance(prepared, OperationCall)
    smuggled = prepared.model_copy(
        update={"target": prepared.target.model_copy(update={"name": "agent-db"})}
    )
    assert (await runner.run_call(prepared)).ok
    assert (await runner.run_call(smuggled)).status is ExecutionStatus.REFUSED
    assert len(docker.calls) == 1
