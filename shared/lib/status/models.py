"""The status report: one row per component, each with its state, latency and last error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ComponentState = Literal["up", "down", "unconfigured"]


class Component(BaseModel):
    """One thing the agent depends on, as its probe found it."""

    name: str
    kind: str
    state: ComponentState
    latency_ms: float | None = None
    error: str | None = None
    """Why it is down (or unconfigured): the thing, the value and what to do."""
    detail: dict[str, Any] = Field(default_factory=dict)


class StatusReport(BaseModel):
    state: Literal["up", "degraded"]
    checked_at: datetime
    elapsed_ms: float
    probe_timeout_s: float
    pending_approvals: int | None
    running_workflows: int | None
    components: list[Component]

    def component(self, name: str) -> Component:
        for component in self.components:
            if component.name == name:
                return component
        raise LookupError(f"no component '{name}' in the status report")


@dataclass
class SweepRecord:
    """The background sweeper's last runs, kept by the runtime for GET /status."""

    runs: int = 0
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_error: str | None = None
    last_duration_ms: float | None = None
    """How long the last pass took (start-up's first pass includes the recovery reads)."""

    def started(self) -> None:
        self.last_started = datetime.now(UTC)

    def finished(self, error: str | None = None) -> None:
        self.runs += 1
        self.last_finished = datetime.now(UTC)
        self.last_error = error
        if self.last_started is not None:
            elapsed = self.last_finished - self.last_started
            self.last_duration_ms = round(elapsed.total_seconds() * 1000, 1)
