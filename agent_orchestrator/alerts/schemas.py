"""Response bodies of the alert endpoints (the webhook's own formats are the alerts domain's)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from shared.lib.alerts.store import AlertRecord


class AlertView(BaseModel):
    """An alert episode as recorded: what the agent did, repeats, resolution and notes."""

    id: int
    fingerprint: str
    alertname: str
    status: str
    action: str
    reason: str | None
    strategy: str | None
    target: str | None
    environment: str | None
    labels: dict[str, str]
    workflow_id: str | None
    workflow_status: str | None
    approval_id: UUID | None
    received: int
    starts_at: datetime
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    notes: list[dict[str, object]]
    source: str = "alertmanager"
    links: dict[str, str] = {}

    @classmethod
    def of(cls, record: AlertRecord) -> AlertView:
        return cls.model_validate(record.model_dump(exclude={"annotations"}))
