"""Target resolution from environments files: ambiguity, unknown names, self-protection,
environment variable interpolation and precise loader errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.lib.config_errors import ConfigError
from shared.lib.targets import (
    AmbiguousTargetError,
    SelfIdentity,
    TargetResolver,
    UnknownEnvironmentError,
    UnknownTargetError,
    load_targets,
)
from shared.lib.targets.models import DockerTarget, HttpTarget, SshTarget
from tests.helpers import CONFIG_DIR

ENVIRONMENTS = """\
version: 1
environments:
  dev:
    docker_hosts:
      local: "${TEST_DOCKER_URL:-unix:///var/run/docker.sock}"
    ssh_hosts:
      box:
        host: "${TEST_SSH_HOST:-127.0.0.1}"
        port: "${TEST_SSH_PORT:-2222}"
        user: agent
        key_path: keys/id_ed25519
    services:
      web: {kind: docker, docker_host: local, container: web, tags: [customer-facing]}
      api:
        kind: docker
        docker_host: local
        labels: {com.docker.compose.service: api}
      agent: {kind: docker, docker_host: local, container: devops-agent}
      postgres: {kind: docker, docker_host: local, container: agent-db, tags: [database]}
      worker: {kind: ssh, ssh_host: box, unit: worker.service}
  prod:
    ssh_hosts:
      web1: {host: web1.prod.internal, user: deploy}
      db1: {host: db1.prod.internal}
      self: {host: agent-host.prod.internal}
    services:
      web:
        kind: ssh
        ssh_host: web1
        unit: nginx.service
        health_url: https://www.example.com/health
      ledger:
        kind: ssh
        ssh_host: db1
        unit: postgresql.service
        endpoints: ["db1.prod.internal:5432"]
      vault: {kind: ssh, ssh_host: web1, unit: vault.service, protected: true}
      cron: {kind: ssh, ssh_host: self, unit: cron.service}
"""

IDENTITY = SelfIdentity(
    container_names=frozenset({"devops-agent"}),
    hostnames=frozenset({"agent-host.prod.internal"}),
    database_endpoints=frozenset({"agent-db:5432", "db1.prod.internal:5432"}),
)


def _write(tmp_path: Path, text: str = ENVIRONMENTS) -> Path:
    path = tmp_path / "environments.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def resolver(tmp_path: Path) -> TargetResolver:
    path = _write(tmp_path)
    return load_targets(config_dir=tmp_path, path=path, identity=IDENTITY, environ={})


def test_docker_target_resolves_with_its_host_url(resolver: TargetResolver) -> None:
    target = resolver.resolve("web", "dev")
    assert isinstance(target, DockerTarget)
    assert (target.container, target.docker_url) == ("web", "unix:///var/run/docker.sock")
    assert target.tags == ("customer-facing",) and not target.protected


def test_docker_target_by_labels(resolver: TargetResolver) -> None:
    target = resolver.resolve("api")
    assert isinstance(target, DockerTarget)
    assert target.container is None
    assert target.labels == {"com.docker.compose.service": "api"}


def test_ssh_target_resolves_with_port_user_and_key_beside_the_file(
    resolver: TargetResolver, tmp_path: Path
) -> None:
    target = resolver.resolve("worker")
    assert isinstance(target, SshTarget)
    assert (target.host, target.port, target.user, target.unit) == (
        "127.0.0.1",
        2222,
        "agent",
        "worker.service",
    )
    assert target.key_path == str(tmp_path / "keys" / "id_ed25519")


def test_same_name_in_two_environments_resolves_per_environment(resolver: TargetResolver) -> None:
    assert resolver.resolve("web", "dev").kind == "docker"
    prod_web = resolver.resolve("web", "prod")
    assert prod_web.kind == "ssh" and prod_web.health_url == "https://www.example.com/health"


def test_ambiguous_name_without_environment_lists_candidates(resolver: TargetResolver) -> None:
    with pytest.raises(AmbiguousTargetError) as caught:
        resolver.resolve("web")
    assert caught.value.environments == ["dev", "prod"]
    assert "dev, prod" in str(caught.value)


def test_unknown_target_lists_known_names_and_the_file(
    resolver: TargetResolver, tmp_path: Path
) -> None:
    with pytest.raises(UnknownTargetError) as caught:
        resolver.resolve("web2")
    assert str(caught.value) == (
        "unknown target 'web2' (known: agent, api, cron, ledger, postgres, vault, web, worker); "
        "add it to environments.yml"
    )
    assert str(tmp_path) not in str(caught.value)  # a caller never learns the server's paths


def test_unknown_in_environment_says_where_it_does_exist(resolver: TargetResolver) -> None:
    with pytest.raises(UnknownTargetError, match="'worker' exists in: dev"):
        resolver.resolve("worker", "prod")


def test_unknown_environment_lists_known_ones(resolver: TargetResolver) -> None:
    with pytest.raises(UnknownEnvironmentError, match=r"'staging' \(known: dev, prod\)"):
        resolver.resolve("web", "staging")


@pytest.mark.parametrize(
    ("name", "environment", "reason"),
    [
        ("agent", "dev", "the agent's own container"),
        ("postgres", "dev", "the agent's own database"),
        ("ledger", "prod", "the agent's own database"),
        ("cron", "prod", "the agent's own host"),
        ("vault", "prod", "marked protected in configuration"),
    ],
)
def test_protected_targets_say_why(
    resolver: TargetResolver, name: str, environment: str, reason: str
) -> None:
    target = resolver.resolve(name, environment)
    assert target.protected
    assert resolver.protection_reason(target) == reason


def test_ordinary_targets_are_not_protected(resolver: TargetResolver) -> None:
    for name, environment in [("web", "dev"), ("api", "dev"), ("worker", "dev"), ("web", "prod")]:
        assert resolver.protection_reason(resolver.resolve(name, environment)) is None


def test_self_protection_ignores_what_config_says(tmp_path: Path) -> None:
    text = ENVIRONMENTS.replace("container: agent-db,", "container: agent-db, protected: false,")
    resolver = load_targets(
        config_dir=tmp_path, path=_write(tmp_path, text), identity=IDENTITY, environ={}
    )
    assert resolver.protection_reason(resolver.resolve("postgres")) == "the agent's own database"


def test_loopback_database_does_not_protect_loopback_ssh_hosts(tmp_path: Path) -> None:
    identity = SelfIdentity(database_endpoints=frozenset({"127.0.0.1:5432"}))
    resolver = load_targets(
        config_dir=tmp_path, path=_write(tmp_path), identity=identity, environ={}
    )
    assert resolver.protection_reason(resolver.resolve("worker")) is None


@pytest.mark.parametrize(("port", "reason"), [(22, "the agent's own host"), (2222, None)])
def test_loopback_ssh_is_the_agents_host_only_on_the_standard_port(
    tmp_path: Path, port: int, reason: str | None
) -> None:
    # getfqdn() often answers "localhost"; that name alone must not protect a test bed.
    identity = SelfIdentity(hostnames=frozenset({"localhost", "vm"}))
    environ = {"TEST_SSH_HOST": "localhost", "TEST_SSH_PORT": str(port)}
    resolver = load_targets(
        config_dir=tmp_path, path=_write(tmp_path), identity=identity, environ=environ
    )
    assert resolver.protection_reason(resolver.resolve("worker")) == reason


def test_protection_of_an_http_probe_follows_its_service(resolver: TargetResolver) -> None:
    probe = HttpTarget(name="postgres", environment="dev")
    assert resolver.protection_reason(probe) == "the agent's own database"


def test_environment_variables_are_interpolated(tmp_path: Path) -> None:
    environ = {"TEST_DOCKER_URL": "tcp://127.0.0.1:2375", "TEST_SSH_PORT": "2200"}
    resolver = load_targets(config_dir=tmp_path, path=_write(tmp_path), environ=environ)
    docker = resolver.resolve("web", "dev")
    ssh = resolver.resolve("worker")
    assert isinstance(docker, DockerTarget) and docker.docker_url == "tcp://127.0.0.1:2375"
    assert isinstance(ssh, SshTarget) and (ssh.host, ssh.port) == ("127.0.0.1", 2200)


def test_empty_variable_takes_the_default(tmp_path: Path) -> None:
    resolver = load_targets(
        config_dir=tmp_path, path=_write(tmp_path), environ={"TEST_SSH_HOST": ""}
    )
    target = resolver.resolve("worker")
    assert isinstance(target, SshTarget) and target.host == "127.0.0.1"


def test_variable_without_default_must_be_set(tmp_path: Path) -> None:
    text = ENVIRONMENTS.replace('"${TEST_SSH_HOST:-127.0.0.1}"', '"${TEST_SSH_HOST}"')
    with pytest.raises(ConfigError) as caught:
        load_targets(config_dir=tmp_path, path=_write(tmp_path, text), environ={})
    message = str(caught.value)
    assert ":8: environments.dev.ssh_hosts.box.host:" in message
    assert "TEST_SSH_HOST is not set" in message


def _load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_targets(config_dir=tmp_path, path=_write(tmp_path, text), environ={})
    message = str(caught.value)
    assert str(tmp_path / "environments.yml") in message
    return message


def test_undefined_docker_host_names_line_and_field(tmp_path: Path) -> None:
    text = ENVIRONMENTS.replace(
        "api:\n        kind: docker\n        docker_host: local",
        "api:\n        kind: docker\n        docker_host: remote",
    )
    message = _load_error(tmp_path, text)
    assert ":16: environments.dev.services.api.docker_host:" in message
    assert "'remote' is not defined in 'dev'" in message and "use one of: local" in message


def test_undefined_ssh_host_is_refused(tmp_path: Path) -> None:
    message = _load_error(tmp_path, ENVIRONMENTS.replace("ssh_host: db1", "ssh_host: db9"))
    assert ":34: environments.prod.services.ledger.ssh_host:" in message
    assert "use one of: db1, self, web1" in message


def test_unknown_key_names_line_and_field(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path, ENVIRONMENTS.replace("        user: agent\n", "        usr: agent\n")
    )
    assert ":10: environments.dev.ssh_hosts.box.usr:" in message


def test_bad_kind_is_refused(tmp_path: Path) -> None:
    message = _load_error(tmp_path, ENVIRONMENTS.replace("worker: {kind: ssh", "worker: {kind: vm"))
    assert ":20: environments.dev.services.worker.kind:" in message and "'vm'" in message


def test_docker_service_needs_container_or_labels(tmp_path: Path) -> None:
    message = _load_error(tmp_path, ENVIRONMENTS.replace(", container: web,", ","))
    assert ":13: environments.dev.services.web" in message and "`container` or `labels`" in message


def test_bad_port_is_refused(tmp_path: Path) -> None:
    message = _load_error(tmp_path, ENVIRONMENTS.replace('"${TEST_SSH_PORT:-2222}"', "70000"))
    assert ":9: environments.dev.ssh_hosts.box.port:" in message and "70000" in message


def test_bad_docker_url_is_refused(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path, ENVIRONMENTS.replace("unix:///var/run/docker.sock", "/var/run/docker.sock")
    )
    assert ":5: environments.dev.docker_hosts.local" in message and "unix://" in message


def test_shipped_environments_file_loads() -> None:
    resolver = load_targets(config_dir=CONFIG_DIR, environ={})
    assert resolver.environments() == ["dev", "prod"]
    assert set(resolver.names("dev")) >= {"web", "db"}
    assert resolver.protection_reason(resolver.resolve("payments-db")) is not None


def test_the_agents_host_is_its_own_whether_named_short_or_in_full(tmp_path: Path) -> None:
    """`AGENT_SELF_HOSTS=agent-host` and an SSH host written `agent-host.prod.internal` are one
    machine: the exact comparison let the agent run commands on the host it runs on."""
    identity = SelfIdentity(hostnames=frozenset({"agent-host"}))
    resolver = load_targets(
        config_dir=tmp_path, path=_write(tmp_path), identity=identity, environ={}
    )
    assert resolver.protection_reason(resolver.resolve("cron", "prod")) == "the agent's own host"
    assert resolver.protection_reason(resolver.resolve("web", "prod")) is None
