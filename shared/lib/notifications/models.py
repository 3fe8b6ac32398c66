"""What a notification says, who receives it, and how hard delivery tries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class NotificationEvent(StrEnum):
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"
    APPROVAL_EXPIRED = "approval_expired"
    APPROVAL_WITHDRAWN = "approval_withdrawn"
    WORKFLOW_FINISHED = "workflow_finished"
    ESCALATED = "escalated"
    """An alert nobody can act on automatically (about the agent itself, or no strategy)."""


ReceiverFormat = Literal["json", "slack"]


class Notification(BaseModel):
    """One event as the generic JSON receivers get it; the Slack message is rendered from it.

    `id` is derived from the event's identity, so a receiver that sees the same id twice (a
    retry, or a resumed workflow announcing a step again) can drop the repeat.
    """

    model_config = ConfigDict(frozen=True)

    version: Literal[1] = 1
    id: UUID
    event: NotificationEvent
    occurred_at: datetime
    title: str
    workflow_id: str | None = None
    workflow_status: str | None = None
    workflow_url: str | None = None
    approval_id: UUID | None = None
    approval_status: str | None = None
    approval_url: str | None = None
    tier: str | None = None
    plan_summary: str = "no plan"
    plan: list[dict[str, Any]] = Field(default_factory=list)
    requester: str | None = None
    actor: str | None = None
    decision: str | None = None
    reason: str | None = None
    approvals_received: int | None = None
    required_approvals: int | None = None
    expires_at: datetime | None = None
    error: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    """What an escalation saw: the alert's name, labels and what triage concluded."""
    shown_hash: str | None = None
    """The hash of the approval view the message was rendered from (Slack buttons carry it)."""
    inbox_url: str | None = None

    @property
    def link(self) -> str:
        """Where a person should look: the approval, else the workflow, else the inbox."""
        return self.approval_url or self.workflow_url or self.inbox_url or ""


@dataclass(frozen=True)
class Receiver:
    """A webhook that gets notifications, with the secret its deliveries are signed with."""

    name: str
    url: str
    format: ReceiverFormat
    secret: str = field(repr=False)
    events: frozenset[NotificationEvent] = frozenset(NotificationEvent)

    def accepts(self, event: NotificationEvent) -> bool:
        return event in self.events


class DeliveryPolicy(BaseModel):
    """Retries, timeouts and the queue bound; the defaults suit a receiver on the internet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=4, ge=1, le=10)
    backoff_s: float = Field(default=1.0, gt=0, le=60)
    """Delay before the second attempt; doubled for each later one, jittered, capped."""
    max_backoff_s: float = Field(default=30.0, gt=0, le=600)
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    """The most one attempt may take, connection included."""
    queue_size: int = Field(default=1000, ge=1, le=100_000)
    concurrency: int = Field(default=4, ge=1, le=32)


@dataclass(frozen=True)
class NotificationsConfig:
    """The validated notifications file: no receivers means notifications are off."""

    receivers: tuple[Receiver, ...] = ()
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    def wants(self, event: NotificationEvent) -> bool:
        return any(receiver.accepts(event) for receiver in self.receivers)
