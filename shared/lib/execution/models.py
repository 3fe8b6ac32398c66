"""Calls and results shared by every executor: remote failures are data, never exceptions."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_OUTPUT_CAP = 64 * 1024


class ExecutionStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"


class DockerTarget(BaseModel):
    """A container on a Docker host, chosen by name or by labels."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["docker"] = "docker"
    name: str
    environment: str
    docker_host: str
    docker_url: str
    container: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    tags: tuple[str, ...] = ()
    protected: bool = False
    health_url: str | None = None


class SshTarget(BaseModel):
    """A host reached over SSH, optionally with the systemd unit that runs the service."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["ssh"] = "ssh"
    name: str
    environment: str
    host: str
    port: int = 22
    user: str = "root"
    key_path: str | None = None
    known_hosts: str | None = None
    unit: str | None = None
    tags: tuple[str, ...] = ()
    protected: bool = False
    health_url: str | None = None


class HttpTarget(BaseModel):
    """A URL probed for verification; no state of it is ever changed."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["http"] = "http"
    name: str
    environment: str
    tags: tuple[str, ...] = ()
    protected: bool = False


ResolvedTarget = Annotated[DockerTarget | SshTarget | HttpTarget, Field(discriminator="kind")]


class OperationCall(BaseModel):
    """One validated catalog operation bound to one resolved target."""

    model_config = ConfigDict(frozen=True)

    operation: str
    target: ResolvedTarget
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = 30.0
    output_cap: int = DEFAULT_OUTPUT_CAP


class Invocation(BaseModel):
    """Exactly what was (or would have been) sent: an API call or an argv."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["docker-api", "ssh", "http", "fake", "none"]
    endpoint: str
    call: str
    argv: tuple[str, ...] | None = None


class ExecutionResult(BaseModel):
    """The outcome of one operation on one target."""

    model_config = ConfigDict(frozen=True)

    status: ExecutionStatus
    operation: str
    target: str
    invocation: Invocation
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    duration_ms: float = 0.0
    reason: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is ExecutionStatus.OK


def cap_output(text: str, limit: int) -> tuple[str, bool]:
    """Cut text to at most `limit` characters; say whether anything was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit], True
