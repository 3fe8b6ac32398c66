"""Turns a logical target name (and maybe an environment) into a concrete Docker or SSH target,
and says which targets are protected and why."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from shared.lib.config_errors import YamlDocument, process_environ, read_yaml
from shared.lib.targets.addresses import host_of, is_loopback, names_host
from shared.lib.targets.models import (
    AmbiguousTargetError,
    DockerService,
    DockerTarget,
    Environment,
    EnvironmentsFile,
    HttpTarget,
    SelfIdentity,
    ServiceSpec,
    SshService,
    SshTarget,
    UnknownEnvironmentError,
    UnknownTargetError,
)

ENVIRONMENTS_FILE = "environments.yml"
ConcreteTarget = DockerTarget | SshTarget

OWN_CONTAINER = "the agent's own container"
OWN_HOST = "the agent's own host"
OWN_DATABASE = "the agent's own database"
OWN_DATABASE_HOST = "the host of the agent's own database"
SELF_REASONS = frozenset({OWN_CONTAINER, OWN_HOST, OWN_DATABASE, OWN_DATABASE_HOST})


class TargetResolver:
    """Resolves logical names to targets; every answer comes from configuration."""

    def __init__(
        self,
        *,
        config: EnvironmentsFile,
        identity: SelfIdentity | None = None,
        source: str = f"config/{ENVIRONMENTS_FILE}",
        base_dir: Path | None = None,
    ) -> None:
        problems = list(dangling_references(config))
        if problems:
            raise ValueError("; ".join(problem for _, problem, _ in problems))
        self._config = config
        self._identity = identity or SelfIdentity()
        self._source = source
        self._base_dir = base_dir
        self._targets: dict[tuple[str, str], ConcreteTarget] = {}
        self._reasons: dict[tuple[str, str], str] = {}
        for env_name, environment in config.environments.items():
            for name, service in environment.services.items():
                reason = self._reason_for(service, environment)
                if reason:
                    self._reasons[(env_name, name)] = reason
                target = self._build(name, env_name, service, environment)
                self._targets[(env_name, name)] = target.model_copy(
                    update={"protected": reason is not None}
                )

    def with_identity(self, identity: SelfIdentity) -> TargetResolver:
        """The same targets, judged against another identity (the database known at start)."""
        return TargetResolver(
            config=self._config, identity=identity, source=self._source, base_dir=self._base_dir
        )

    def environments(self) -> list[str]:
        return sorted(self._config.environments)

    def names(self, environment: str | None = None) -> list[str]:
        """Logical target names, in one environment or in all of them."""
        return sorted({name for env, name in self._targets if environment in (None, env)})

    def targets(self, environment: str | None = None) -> list[ConcreteTarget]:
        return [
            target
            for (env, _), target in sorted(self._targets.items())
            if environment in (None, env)
        ]

    def docker_hosts(self) -> list[tuple[str, str, str]]:
        """(environment, host name, engine URL) for every configured Docker host."""
        return [
            (env_name, name, host.url)
            for env_name, environment in sorted(self._config.environments.items())
            for name, host in sorted(environment.docker_hosts.items())
        ]

    def ssh_hosts(self) -> list[SshTarget]:
        """Every configured SSH host as a target named after the host (status probes)."""
        return [
            SshTarget(
                name=name,
                environment=env_name,
                host=host.host,
                port=host.port,
                user=host.user,
                key_path=self._local_path(host.key_path),
                known_hosts=self._local_path(host.known_hosts),
            )
            for env_name, environment in sorted(self._config.environments.items())
            for name, host in sorted(environment.ssh_hosts.items())
        ]

    def resolve(self, name: str, environment: str | None = None) -> ConcreteTarget:
        """The target called `name`; the environment may be left out when the name is unique."""
        if environment is not None:
            return self._resolve_in(name, environment)
        found = [env for env, target_name in sorted(self._targets) if target_name == name]
        if not found:
            raise UnknownTargetError(
                f"unknown target '{name}' (known: {', '.join(self.names()) or 'none'}); "
                f"add it to {self._source}"
            )
        if len(found) > 1:
            raise AmbiguousTargetError(name, found)
        return self._targets[(found[0], name)]

    def service(self, name: str, environment: str) -> ServiceSpec:
        """The service as configured (description, aliases, unit...), for a resolved target."""
        return self._config.environments[environment].services[name]

    def self_reason(self, target: DockerTarget | SshTarget | HttpTarget) -> str | None:
        """Which part of the agent itself the target is, or None when it is not the agent."""
        reason = self._reasons.get((target.environment, target.name))
        return reason if reason in SELF_REASONS else None

    def services_from(
        self, *, repository: str | None = None, sentry_project: str | None = None
    ) -> list[tuple[str, str]]:
        """(environment, service) pairs whose `repository` or `sentry_project` is the one given."""
        found: list[tuple[str, str]] = []
        for env_name, environment in sorted(self._config.environments.items()):
            for name, service in sorted(environment.services.items()):
                by_repository = repository is not None and (
                    (service.repository or "").lower() == repository.lower()
                )
                by_project = sentry_project is not None and service.sentry_project == sentry_project
                if by_repository or by_project:
                    found.append((env_name, name))
        return found

    def protection_reason(self, target: DockerTarget | SshTarget | HttpTarget) -> str | None:
        """Why the target must not be changed by the agent, or None when it may be."""
        reason = self._reasons.get((target.environment, target.name))
        if reason is None and target.protected:
            return "marked protected"
        return reason

    def _resolve_in(self, name: str, environment: str) -> ConcreteTarget:
        if environment not in self._config.environments:
            raise UnknownEnvironmentError(
                f"unknown environment '{environment}' (known: {', '.join(self.environments())}); "
                f"add it to {self._source}"
            )
        target = self._targets.get((environment, name))
        if target is None:
            elsewhere = [env for env, target_name in sorted(self._targets) if target_name == name]
            hint = f"; '{name}' exists in: {', '.join(elsewhere)}" if elsewhere else ""
            raise UnknownTargetError(
                f"unknown target '{name}' in environment '{environment}' "
                f"(known there: {', '.join(self.names(environment)) or 'none'}){hint}; "
                f"add it to {self._source}"
            )
        return target

    def _build(
        self, name: str, env_name: str, service: ServiceSpec, environment: Environment
    ) -> ConcreteTarget:
        common = {
            "name": name,
            "environment": env_name,
            "tags": service.tags,
            "health_url": service.health_url,
            "verify_url": service.verify_url,
        }
        if isinstance(service, DockerService):
            return DockerTarget(
                **common,
                docker_host=service.docker_host,
                docker_url=environment.docker_hosts[service.docker_host].url,
                container=service.container,
                labels=service.labels,
            )
        host = environment.ssh_hosts[service.ssh_host]
        return SshTarget(
            **common,
            host=host.host,
            port=host.port,
            user=host.user,
            key_path=self._local_path(host.key_path),
            known_hosts=self._local_path(host.known_hosts),
            unit=service.unit,
        )

    def _local_path(self, value: str | None) -> str | None:
        # Relative key files live beside the environments file, not in the working directory.
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self._base_dir is not None:
            path = self._base_dir / path
        return str(path)

    def _reason_for(self, service: ServiceSpec, environment: Environment) -> str | None:
        own = self._self_reason(service, environment)
        if own:
            return own
        if service.protected:
            return service.protected_reason or "marked protected in configuration"
        return None

    def _self_reason(self, service: ServiceSpec, environment: Environment) -> str | None:
        identity = self._identity
        database_hosts = {host_of(endpoint) for endpoint in identity.database_endpoints}
        remote_database_hosts = {host for host in database_hosts if not is_loopback(host)}
        endpoints = {endpoint.lower() for endpoint in service.endpoints}
        if endpoints & {endpoint.lower() for endpoint in identity.database_endpoints}:
            return OWN_DATABASE
        if isinstance(service, DockerService):
            names = {service.container, service.labels.get("com.docker.compose.service")}
            if names & remote_database_hosts:
                return OWN_DATABASE  # on a compose network the database host is its container
            if names & identity.container_names:
                return OWN_CONTAINER
            return None
        ssh_host = environment.ssh_hosts[service.ssh_host]
        host = ssh_host.host.lower()
        if host in remote_database_hosts:
            return OWN_DATABASE_HOST
        if is_loopback(host):
            # Loopback on the standard port is this machine's own sshd; other loopback ports
            # are tunnels and test beds that forward to other machines.
            return OWN_HOST if ssh_host.port == 22 else None
        if names_host(host, identity.hostnames):
            return OWN_HOST
        return None


def dangling_references(config: EnvironmentsFile) -> Iterator[tuple[tuple[str, ...], str, str]]:
    """(field path, problem, fix) for each service naming a host its environment lacks."""
    for env_name, environment in config.environments.items():
        for name, service in environment.services.items():
            at = ("environments", env_name, "services", name)
            if isinstance(service, DockerService) and (
                service.docker_host not in environment.docker_hosts
            ):
                known = ", ".join(sorted(environment.docker_hosts)) or "none"
                yield (
                    (*at, "docker_host"),
                    f"docker host '{service.docker_host}' is not defined in '{env_name}'",
                    f"use one of: {known}, or add it under docker_hosts",
                )
            if isinstance(service, SshService) and service.ssh_host not in environment.ssh_hosts:
                known = ", ".join(sorted(environment.ssh_hosts)) or "none"
                yield (
                    (*at, "ssh_host"),
                    f"ssh host '{service.ssh_host}' is not defined in '{env_name}'",
                    f"use one of: {known}, or add it under ssh_hosts",
                )


def load_targets(
    *,
    config_dir: Path,
    path: Path | None = None,
    identity: SelfIdentity | None = None,
    environ: Mapping[str, str] | None = None,
) -> TargetResolver:
    """A resolver over `path` (relative to `config_dir`), by default `environments.yml` there.

    `${VAR:-default}` in values is filled from `environ` (the process environment if omitted).
    """
    file = config_dir / (path or ENVIRONMENTS_FILE)
    document = read_yaml(
        file, environ=process_environ() if environ is None else environ, what="environments"
    )
    config = document.validate(EnvironmentsFile, context="config/environments.yml")
    _check_references(config, document)
    # The file's name, not its path: these messages reach whoever asked (chat, API, MCP), and
    # where the service keeps its configuration is not theirs to know.
    return TargetResolver(config=config, identity=identity, source=file.name, base_dir=file.parent)


def _check_references(config: EnvironmentsFile, document: YamlDocument) -> None:
    for at, problem, fix in dangling_references(config):
        raise document.error(problem, at=at, fix=fix)
