"""Plans: the ordered catalog operations a workflow runs, and the hash an approval binds to."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.safe_input import Params, SafeText

MAX_STEPS = 50
"""The most operations one plan may hold."""


class PlannedOperation(BaseModel):
    """One step of a plan: a catalog operation on a logical target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: SafeText = Field(min_length=1, max_length=64)
    target: SafeText = Field(min_length=1, max_length=128)
    environment: SafeText | None = Field(default=None, max_length=64)
    params: Params = Field(default_factory=dict)


class RequestFlag(BaseModel):
    """Something in the request an approver must see, such as text that tries to change the
    rules; risk rules match on `kind` (request_flags), never lowering a tier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(min_length=1, max_length=64)
    evidence: str = Field(default="", max_length=200)


class Plan(BaseModel):
    """The ordered operations a workflow will run once its gate allows it.

    `flags` come from the request's text (never from a model) and are not part of the hash:
    an approval binds the steps; the flags only ever raise the tier.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: list[PlannedOperation] = Field(min_length=1, max_length=MAX_STEPS)
    summary: str = ""
    flags: list[RequestFlag] = Field(default_factory=list)

    def normalized(self) -> list[dict[str, Any]]:
        return [step.model_dump(mode="json") for step in self.steps]

    @property
    def hash(self) -> str:
        """Hash of the exact normalized steps; an approval is bound to it."""
        canonical = json.dumps(self.normalized(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
