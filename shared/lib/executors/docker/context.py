"""What one Docker call carries through its operation: the call context, the outcome it builds,
and the exception that ends it early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import docker

from shared.lib.execution.models import ExecutionStatus, OperationCall
from shared.lib.targets.models import DockerTarget


class Stop(Exception):
    """Ends an operation early with a status and a reason (bad params, ambiguous selection...)."""

    def __init__(self, status: ExecutionStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Outcome:
    status: ExecutionStatus = ExecutionStatus.OK
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """One call in flight; `api_call` names the request being sent, or the last one sent."""

    call: OperationCall
    target: DockerTarget
    deadline: float
    client: docker.DockerClient | None = None
    api_call: str = ""
    argv: tuple[str, ...] | None = None

    @property
    def engine(self) -> docker.DockerClient:
        assert self.client is not None, "the client is set before any operation runs"
        return self.client

    @property
    def ref(self) -> str:
        return self.target.container or selector(self.target.labels)

    def announce(self, api_call: str) -> None:
        self.api_call = api_call


def selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def failure(status: ExecutionStatus, reason: str) -> Outcome:
    return Outcome(status=status, reason=reason)
