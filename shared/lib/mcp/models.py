"""What MCP tools take and give: argument models (extra fields refused) and target summaries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.lib.safe_input import SafeText
from shared.lib.targets.resolver import TargetResolver

WAIT_DEFAULT_S = 60.0
WAIT_MAX_S = 600.0


class ToolArguments(BaseModel):
    # An unknown argument (`approved`, `approval_id`, ...) is refused by name, never ignored
    # silently: nothing a caller adds to a call can stand in for a human decision.
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(ToolArguments):
    """A tool that takes no arguments still refuses any it is given, by name."""


class DescribeArgs(ToolArguments):
    operation: SafeText | None = Field(
        default=None, description="One operation's name; omit it for the whole catalog."
    )


class ReadArgs(ToolArguments):
    operation: SafeText = Field(description="A read-only catalog operation (logs, inspect, ...).")
    target: SafeText = Field(min_length=1, max_length=128, description="A logical target name.")
    environment: SafeText | None = Field(
        default=None, max_length=64, description="The target's environment (dev, prod, ...)."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The operation's parameters, as the catalog types them."
    )


class ChangeArgs(ToolArguments):
    request: SafeText | None = Field(
        default=None,
        max_length=4000,
        description="What to do in plain words; planned like any other request. "
        "Give this or 'operation' with 'target'.",
    )
    operation: SafeText | None = Field(default=None, description="A catalog operation.")
    target: SafeText | None = Field(default=None, max_length=128, description="A logical target.")
    environment: SafeText | None = Field(default=None, max_length=64, description="dev, prod, ...")
    params: dict[str, Any] = Field(default_factory=dict, description="The operation's params.")
    reason: SafeText = Field(
        min_length=3,
        max_length=1000,
        description="Why the change is needed; shown to the human approver as written.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> ChangeArgs:
        if (self.request is None) == (self.operation is None):
            raise ValueError("give exactly one of 'request' (plain words) or 'operation'")
        if self.operation is not None and not self.target:
            raise ValueError("field 'target' is required with 'operation'")
        if self.request is not None and (self.target or self.params):
            raise ValueError(
                "'target' and 'params' go with 'operation'; with 'request' name the target "
                "in the words themselves"
            )
        return self


class WorkflowArgs(ToolArguments):
    workflow_id: str = Field(
        pattern=r"^[A-Za-z0-9._:-]{1,64}$", description="A workflow id (wf-...)."
    )


class WaitArgs(WorkflowArgs):
    timeout_s: float = Field(
        default=WAIT_DEFAULT_S,
        gt=0,
        le=WAIT_MAX_S,
        description="How long to wait for the workflow to finish, at most 600 seconds.",
    )


class ListArgs(ToolArguments):
    limit: int = Field(default=20, ge=1, le=100, description="How many, newest first.")


class TargetSummary(BaseModel):
    """A target as a requester may see it: never hosts, keys or container names."""

    name: str
    environment: str
    kind: str
    tags: list[str]
    protected: bool
    protected_reason: str | None = None


def target_summaries(resolver: TargetResolver) -> list[TargetSummary]:
    return [
        TargetSummary(
            name=target.name,
            environment=target.environment,
            kind=target.kind,
            tags=list(target.tags),
            protected=target.protected,
            protected_reason=resolver.protection_reason(target),
        )
        for target in resolver.targets()
    ]
