"""Turn workflow and approval events into notifications. Every method swallows its own
failures (logged, counted): a notification must never fail or stall the workflow."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared.lib.approvals.models import ApprovalRecord
from shared.lib.approvals.shown import shown_approval
from shared.lib.approvals.store import ApprovalStore
from shared.lib.metrics import NOTIFICATIONS
from shared.lib.notifications.dispatcher import NotificationDispatcher
from shared.lib.notifications.formats import plan_summary, title
from shared.lib.notifications.models import Notification, NotificationEvent, NotificationsConfig
from shared.lib.workflows.store import TERMINAL_STATUSES, WorkflowRecord, WorkflowStore

log = logging.getLogger(__name__)

# Notification ids are derived from what the event is about, so repeats share an id.
NOTIFICATION_NAMESPACE = uuid.UUID("0f1d4c9e-6a53-4f0b-8a2e-3c7b9d15e842")

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080"


class Notifier:
    """What the engine and the approval routes call, one line per event."""

    def __init__(
        self,
        *,
        dispatcher: NotificationDispatcher,
        approvals: ApprovalStore,
        workflows: WorkflowStore,
        public_url: str = DEFAULT_PUBLIC_URL,
    ) -> None:
        self._dispatcher = dispatcher
        self._approvals = approvals
        self._workflows = workflows
        self._public_url = public_url.rstrip("/")

    @classmethod
    def silent(cls, *, approvals: ApprovalStore, workflows: WorkflowStore) -> Notifier:
        """A notifier with no receivers: every call returns at once."""
        dispatcher = NotificationDispatcher(NotificationsConfig())
        return cls(dispatcher=dispatcher, approvals=approvals, workflows=workflows)

    async def status_changed(self, workflow_id: str, status: str) -> None:
        """A workflow paused at its gate (approval_requested) or ended (workflow_finished)."""
        if status == "awaiting_approval":
            event = NotificationEvent.APPROVAL_REQUESTED
        elif status in TERMINAL_STATUSES:
            event = NotificationEvent.WORKFLOW_FINISHED
        else:
            return
        await self._publish(event, workflow_id, lambda: self._about_workflow(event, workflow_id))

    async def approval_decided(
        self, approval: ApprovalRecord, *, decision: str, actor: str, reason: str | None
    ) -> None:
        """One decision was recorded (it may not resolve the approval on its own)."""
        event = NotificationEvent.APPROVAL_DECIDED

        async def build() -> Notification:
            workflow = await self._workflows.get(approval.workflow_id)
            return self._compose(
                event,
                workflow,
                approval,
                key=f"{actor}:{decision}",
                actor=actor,
                decision=decision,
                reason=reason,
            )

        await self._publish(event, approval.workflow_id, build)

    async def approval_resolved(
        self, approval: ApprovalRecord, *, event: NotificationEvent
    ) -> None:
        """An approval ended without a decision: expired by its TTL, or withdrawn."""
        last = approval.actions[-1] if approval.actions else None

        async def build() -> Notification:
            workflow = await self._workflows.get(approval.workflow_id)
            return self._compose(
                event,
                workflow,
                approval,
                actor=last.actor if last else None,
                reason=last.reason if last else None,
            )

        await self._publish(event, approval.workflow_id, build)

    async def escalated(self, *, key: str, reason: str, evidence: dict[str, Any]) -> None:
        """Something needs a person and no workflow will act on it (an alert about the agent
        itself, an alert no strategy covers); `key` makes repeats share an id."""
        event = NotificationEvent.ESCALATED

        async def build() -> Notification:
            return Notification(
                id=uuid.uuid5(NOTIFICATION_NAMESPACE, f"{event.value}:{key}"),
                event=event,
                occurred_at=datetime.now(UTC),
                title=title(event, tier=None, status="escalated"),
                reason=reason,
                evidence=evidence,
                inbox_url=f"{self._public_url}/inbox/pending",
            )

        await self._publish(event, None, build)

    async def _publish(
        self,
        event: NotificationEvent,
        workflow_id: str | None,
        build: Callable[[], Awaitable[Notification]],
    ) -> None:
        if not self._dispatcher.config.wants(event):
            return
        try:
            notification = await build()
        except Exception:  # the workflow goes on; the failure shows in logs and metrics
            NOTIFICATIONS.labels(channel="all", event=event.value, status="error").inc()
            log.exception(
                "could not build a notification",
                extra={"notification_event": event.value, "workflow_id": workflow_id},
            )
            return
        self._dispatcher.publish(notification)

    async def _about_workflow(self, event: NotificationEvent, workflow_id: str) -> Notification:
        workflow = await self._workflows.get(workflow_id)
        approval = None
        if workflow.approval_id is not None:
            approval = await self._approvals.get(workflow.approval_id)
        return self._compose(event, workflow, approval, key=workflow.status)

    def _compose(
        self,
        event: NotificationEvent,
        workflow: WorkflowRecord,
        approval: ApprovalRecord | None,
        *,
        key: str = "",
        actor: str | None = None,
        decision: str | None = None,
        reason: str | None = None,
    ) -> Notification:
        tier = approval.risk_level if approval else (workflow.risk or {}).get("tier")
        steps = approval.plan if approval else (workflow.plan or [])
        approval_id = approval.id if approval else None
        identity = f"{event.value}:{workflow.id}:{approval_id}:{key}"
        return Notification(
            id=uuid.uuid5(NOTIFICATION_NAMESPACE, identity),
            event=event,
            occurred_at=datetime.now(UTC),
            title=title(event, tier=tier, status=workflow.status, decision=decision, actor=actor),
            workflow_id=workflow.id,
            workflow_status=workflow.status,
            workflow_url=f"{self._public_url}/inbox/workflows/{workflow.id}",
            approval_id=approval_id,
            approval_status=approval.status.value if approval else None,
            approval_url=self._approval_url(approval_id),
            tier=tier,
            plan_summary=plan_summary(steps),
            plan=steps,
            requester=workflow.requester,
            actor=actor,
            decision=decision,
            reason=reason,
            approvals_received=approval.approvals_received if approval else None,
            required_approvals=approval.required_approvals if approval else None,
            expires_at=approval.expires_at if approval else None,
            error=workflow.error if event is NotificationEvent.WORKFLOW_FINISHED else None,
            shown_hash=shown_approval(approval).hash if approval else None,
            inbox_url=f"{self._public_url}/inbox/pending",
        )

    def _approval_url(self, approval_id: UUID | None) -> str | None:
        return f"{self._public_url}/inbox/approvals/{approval_id}" if approval_id else None
