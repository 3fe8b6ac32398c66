"""Environments, hosts and services as configured, and who the agent itself is."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DOCKER_URL_SCHEMES = ("unix://", "tcp://", "http://", "https://", "ssh://")
ALIAS = r"^[a-z0-9][a-z0-9 ._'-]*$"


class UnknownTargetError(LookupError):
    """A logical target name that no environment defines."""


class AmbiguousTargetError(LookupError):
    """A logical name defined in several environments, asked for without one."""

    def __init__(self, name: str, environments: list[str]) -> None:
        self.name = name
        self.environments = environments
        super().__init__(
            f"target '{name}' exists in several environments ({', '.join(environments)}); "
            "say which environment you mean"
        )


class UnknownEnvironmentError(LookupError):
    """An environment name that config/environments.yml does not define."""


class DockerHost(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str

    @field_validator("url")
    @classmethod
    def _docker_url(cls, value: str) -> str:
        if not value.startswith(DOCKER_URL_SCHEMES):
            raise ValueError(f"use a Docker URL starting with {' or '.join(DOCKER_URL_SCHEMES)}")
        return value


class SshHost(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(default="root", min_length=1)
    key_path: str | None = None
    known_hosts: str | None = None


class ServiceBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    aliases: tuple[Annotated[str, Field(pattern=ALIAS, max_length=64)], ...] = ()
    """Other names people use for it ("payments database"); matched whole, several targets
    may share one (the planner then asks which, unless the request says all of them)."""
    tags: tuple[str, ...] = ()
    protected: bool = False
    protected_reason: str | None = None
    health_url: str | None = None
    verify_url: str | None = Field(default=None, pattern=r"^https?://")
    """Checked after every change to this service, whatever the operation: the service as its
    users reach it (the load balancer in front of this replica, say). An answer other than 200
    fails verification, which opens the rollback gate."""
    endpoints: tuple[str, ...] = ()
    """host:port addresses the service answers on, matched against the agent's database."""
    repository: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    """The GitHub repository (owner/name) whose deploys and CI runs name this service."""
    sentry_project: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")
    """The Sentry project slug whose alerts name this service."""


class DockerService(ServiceBase):
    kind: Literal["docker"]
    docker_host: str
    container: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _container_or_labels(self) -> Self:
        if not self.container and not self.labels:
            raise ValueError("a docker service needs `container` or `labels` to find it")
        return self


class SshService(ServiceBase):
    kind: Literal["ssh"]
    ssh_host: str
    unit: str | None = None


ServiceSpec = Annotated[DockerService | SshService, Field(discriminator="kind")]


class Environment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    docker_hosts: dict[str, DockerHost] = Field(default_factory=dict)
    ssh_hosts: dict[str, SshHost] = Field(default_factory=dict)
    services: dict[str, ServiceSpec] = Field(default_factory=dict)

    @field_validator("docker_hosts", mode="before")
    @classmethod
    def _url_shorthand(cls, value: Any) -> Any:
        # `local: unix:///var/run/docker.sock` is the common case; allow it without `url:`.
        if isinstance(value, dict):
            return {name: {"url": v} if isinstance(v, str) else v for name, v in value.items()}
        return value


class EnvironmentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    environments: dict[str, Environment] = Field(min_length=1)


class SelfIdentity(BaseModel):
    """What the agent runs as, so it can never be told to restart itself or its database.

    The service fills it from its own settings: its container names, the names and addresses
    of its host, and the host:port of its database.
    """

    model_config = ConfigDict(frozen=True)

    container_names: frozenset[str] = frozenset()
    hostnames: frozenset[str] = frozenset()
    database_endpoints: frozenset[str] = frozenset()


class ResolvedTargetBase(BaseModel):
    """What every concrete target carries: its logical name, environment, tags and protection."""

    model_config = ConfigDict(frozen=True)

    name: str
    environment: str
    tags: tuple[str, ...] = ()
    protected: bool = False


class DockerTarget(ResolvedTargetBase):
    """A container on a Docker host, chosen by name or by labels."""

    kind: Literal["docker"] = "docker"
    docker_host: str
    docker_url: str
    container: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    health_url: str | None = None
    verify_url: str | None = None


class SshTarget(ResolvedTargetBase):
    """A host reached over SSH, optionally with the systemd unit that runs the service."""

    kind: Literal["ssh"] = "ssh"
    host: str
    port: int = 22
    user: str = "root"
    key_path: str | None = None
    known_hosts: str | None = None
    unit: str | None = None
    health_url: str | None = None
    verify_url: str | None = None


class HttpTarget(ResolvedTargetBase):
    """A URL probed for verification; no state of it is ever changed."""

    kind: Literal["http"] = "http"


ResolvedTarget = Annotated[DockerTarget | SshTarget | HttpTarget, Field(discriminator="kind")]
