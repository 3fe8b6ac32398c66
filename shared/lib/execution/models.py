"""Calls and results shared by every executor: remote failures are data, never exceptions."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.targets.models import ResolvedTarget

DEFAULT_OUTPUT_CAP = 64 * 1024


class ExecutionStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"


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
