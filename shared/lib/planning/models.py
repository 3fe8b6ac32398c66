"""Plans: the ordered catalog operations a workflow runs, and the hash an approval binds to."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.lib.safe_input import Params, SafeText

MAX_STEPS = 50
"""The most operations one plan may hold."""


class RunCondition(BaseModel):
    """Run a step only if an earlier step ended `status` (ok, or failed: anything but ok).
    The engine evaluates it; a step whose condition does not hold is skipped and recorded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: int = Field(ge=0, lt=MAX_STEPS)
    status: Literal["ok", "failed"]

    def holds(self, result: dict[str, Any] | None) -> bool:
        if result is None:
            return False
        ok = result.get("status") == "ok"
        return ok if self.status == "ok" else not ok and result.get("status") != "skipped"

    def describe(self) -> str:
        return f"only if step {self.step} {'succeeded' if self.status == 'ok' else 'failed'}"


class PlannedOperation(BaseModel):
    """One step of a plan: a catalog operation on a logical target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    operation: SafeText = Field(min_length=1, max_length=64)
    target: SafeText = Field(min_length=1, max_length=128)
    environment: SafeText | None = Field(default=None, max_length=64)
    params: Params = Field(default_factory=dict)
    when: RunCondition | None = None
    """Run only if an earlier step ended so; left out of the hash when unset."""


class RequestFlag(BaseModel):
    """Something in the request an approver must see, such as text that tries to change the
    rules; risk rules match on `kind` (request_flags), never lowering a tier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SafeText = Field(min_length=1, max_length=64)
    evidence: SafeText = Field(default="", max_length=200)


class Plan(BaseModel):
    """The ordered operations a workflow will run once its gate allows it.

    `flags` come from the request's text (never from a model) and are not part of the hash:
    an approval binds the steps; the flags only ever raise the tier.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: list[PlannedOperation] = Field(min_length=1, max_length=MAX_STEPS)
    summary: SafeText = ""
    flags: list[RequestFlag] = Field(default_factory=list)

    @model_validator(mode="after")
    def _conditions_look_back(self) -> Plan:
        for index, step in enumerate(self.steps):
            if step.when is not None and step.when.step >= index:
                raise ValueError(
                    f"step {index}: 'when' names step {step.when.step}; a condition can only "
                    "name an earlier step"
                )
        return self

    def normalized(self) -> list[dict[str, Any]]:
        # A step without a condition keeps its old shape (and so its plan hash).
        return [
            step.model_dump(mode="json", exclude={"when"} if step.when is None else None)
            for step in self.steps
        ]

    @property
    def hash(self) -> str:
        """Hash of the exact normalized steps; an approval is bound to it."""
        canonical = json.dumps(self.normalized(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
