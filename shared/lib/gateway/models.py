"""The AI Command Gateway's request and response, as its clients send and read them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.lib.safe_input import Params, SafeText

MAX_CONTEXT_BYTES = 8 * 1024

Priority = Literal["LOW", "NORMAL", "MEDIUM", "HIGH", "CRITICAL"]

OverallStatus = Literal[
    "COMPLETED_SUCCESS",
    "COMPLETED_FAILURE",
    "PENDING_APPROVAL",
    "IN_PROGRESS",
    "REJECTED",
    "EXPIRED",
    "WITHDRAWN",
    "FAILED",
]


ResultStatus = Literal["SUCCESS", "FAILURE", "TIMEOUT", "REFUSED", "UNREACHABLE"]


class TargetResource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: SafeText = Field(min_length=1, max_length=200, examples=["web"])
    environment: SafeText | None = Field(default=None, max_length=100, examples=["prod"])
    """Not in the original gateway; without it, `context.environment` or the name decides."""


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    intent: SafeText = Field(min_length=1, max_length=2000, examples=["restart the container"])


class GatewayRequest(BaseModel):
    source_id: SafeText = Field(min_length=1, max_length=200, examples=["monitoring-bot"])
    target_resource: TargetResource
    action_request: ActionRequest
    context: Params = Field(default_factory=dict)
    priority: Priority = "NORMAL"

    @field_validator("priority", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("context")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, default=str))
        if size > MAX_CONTEXT_BYTES:
            raise ValueError(
                f"context is {size} bytes of JSON; send at most {MAX_CONTEXT_BYTES} "
                "(summarize it, or link to the rest)"
            )
        return value


class ExecutionDetails(BaseModel):
    command: str
    """What was (or, pending approval, will be) sent: the Docker API call or the argv."""
    operations: list[dict[str, Any]]
    risk_tier: str | None = None


class GatewayExecutionResult(BaseModel):
    status: ResultStatus
    exit_code: int | None
    stdout: str
    stderr: str = ""


class GatewayResponse(BaseModel):
    request_id: str
    timestamp_processed_utc: datetime
    overall_status: OverallStatus
    workflow_id: str
    approval_id: UUID | None = None
    approval_url: str | None = None
    message: str | None = None
    execution_details: ExecutionDetails | None = None
    execution_result: GatewayExecutionResult | None = None
