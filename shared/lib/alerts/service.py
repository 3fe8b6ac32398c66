"""Alertmanager deliveries: check who sent them, start at most one recovery workflow per alert,
escalate alerts about the agent itself, and withdraw a pending approval once its alert resolves.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Literal, Protocol

from prometheus_client import Counter

from shared.lib.alerts.evidence import escalation_evidence, finding
from shared.lib.alerts.investigation import INVESTIGATION
from shared.lib.alerts.models import (
    AlertmanagerAlert,
    AlertmanagerPayload,
    AlertOutcome,
    Outcome,
    RefusedAlert,
    WebhookReply,
)
from shared.lib.alerts.requests import REQUESTER, work_request
from shared.lib.alerts.requests import SOURCE as ALERT_SOURCE
from shared.lib.alerts.store import AlertNotice, AlertRecord, AlertStore
from shared.lib.alerts.storm import STORM_THRESHOLD, AlertStorm
from shared.lib.alerts.triage import AlertFacts, AlertTriage
from shared.lib.approvals.service import ApprovalService
from shared.lib.errors import ConflictError, DomainError
from shared.lib.settings import Settings
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.store import TERMINAL_STATUSES, WorkflowRecord, WorkflowStore

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Signature-256"


ALERT_NOTIFICATIONS = Counter(
    "orchestrator_alert_notifications_total",
    "Alerts received on the webhook, by alert status and what the agent did.",
    ["status", "outcome"],
)


class WebhookAuthError(DomainError):
    status_code = 401


class WebhookDisabledError(DomainError):
    status_code = 503


class AlertsNotHandledError(DomainError):
    """Some alerts failed for a passing reason; Alertmanager redelivers, the rest deduplicate."""

    status_code = 503


def verify_delivery(
    *, settings: Settings, authorization: str | None, signature: str | None, body: bytes
) -> None:
    """Accept only the configured bearer token and, with a secret set, a valid body signature."""
    token = settings.alert_webhook_token
    if token is None:
        raise WebhookDisabledError(
            "the alert webhook is off: set AGENT_ALERT_WEBHOOK_TOKEN on the agent and the same "
            "value as `credentials` under the webhook's http_config.authorization in Alertmanager"
        )
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not _same(presented.strip(), token.get_secret_value()):
        raise WebhookAuthError(
            "missing or wrong bearer token; send 'Authorization: Bearer <token>' with the value "
            "of AGENT_ALERT_WEBHOOK_TOKEN"
        )
    secret = settings.alert_webhook_secret
    if secret is None:
        return
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    if not signature or not _same(signature.strip().lower(), f"sha256={digest}"):
        raise WebhookAuthError(
            f"missing or wrong {SIGNATURE_HEADER}; send 'sha256=<hex HMAC-SHA256 of the raw "
            "body keyed with AGENT_ALERT_WEBHOOK_SECRET>'"
        )


AlertStatus = Literal["firing", "resolved"]
AlertSignal = tuple[AlertStatus, AlertNotice]
"""One alert from any source, normalized: firing or resolved, and what it is about."""


class IncidentSink(Protocol):
    """Told about escalations and resolutions (the tracker); must return at once, never raise."""

    async def escalated(self, record: AlertRecord) -> None: ...

    async def resolved(self, record: AlertRecord) -> None: ...


class AlertService:
    """Turns each alert of a notification into a workflow, an escalation or a recorded no-op."""

    def __init__(
        self,
        *,
        store: AlertStore,
        workflows: WorkflowStore,
        engine: WorkflowEngine,
        approvals: ApprovalService,
        triage: AlertTriage,
        incidents: IncidentSink | None = None,
        storm: AlertStorm | None = None,
    ) -> None:
        self._storm = storm
        self._store = store
        self._workflows = workflows
        self._engine = engine
        self._approvals = approvals
        self._triage = triage
        self._incidents = incidents

    async def receive(
        self, payload: AlertmanagerPayload, *, request_id: str | None
    ) -> WebhookReply:
        """Handle every alert of the notification, in order; the reply says what happened.

        Each alert stands alone: a malformed one is refused, and one whose handling fails does
        not stop those after it (the delivery then answers 503 so Alertmanager retries it).
        """
        items: list[AlertSignal | AlertOutcome] = [
            _refused(alert) if isinstance(alert, RefusedAlert) else (alert.status, _notice(alert))
            for alert in payload.parsed()
        ]
        firing = [i[1] for i in items if isinstance(i, tuple) and i[0] == "firing"]
        if self._storm is None or len(firing) <= STORM_THRESHOLD:
            return await self._handle(items, request_id=request_id)
        # A storm: record every firing alert now, start their workflows off the request path.
        queued = await self._storm.record(firing, request_id=request_id)
        for outcome in queued:
            ALERT_NOTIFICATIONS.labels(status="firing", outcome=outcome.outcome).inc()
        rest = [i for i in items if not (isinstance(i, tuple) and i[0] == "firing")]
        handled = await self._handle(rest, request_id=request_id)
        return WebhookReply.of([*queued, *handled.alerts])

    async def recover_queued(self, *, grace_s: float) -> int:
        """Alerts recorded but never processed (their process died): process them now."""
        return 0 if self._storm is None else await self._storm.recover(grace_s=grace_s)

    async def receive_signals(
        self, signals: list[tuple[AlertStatus, AlertNotice]], *, request_id: str | None
    ) -> WebhookReply:
        """Alerts from any source, normalized: the one triage, dedup and withdrawal path."""
        return await self._handle(list(signals), request_id=request_id)

    async def _handle(
        self, items: list[AlertSignal | AlertOutcome], *, request_id: str | None
    ) -> WebhookReply:
        outcomes: list[AlertOutcome] = []
        failed: list[str] = []
        for item in items:
            if isinstance(item, AlertOutcome):  # refused before any handling
                ALERT_NOTIFICATIONS.labels(status=item.status, outcome=item.outcome).inc()
                outcomes.append(item)
                continue
            status, notice = item
            try:
                if status == "firing":
                    outcome = await self._firing(notice, request_id=request_id)
                else:
                    outcome = await self._resolved(notice)
            except Exception:  # isolation: log it, go on with the others, answer 503 at the end
                log.exception("alert not handled", extra={"fingerprint": notice.fingerprint})
                failed.append(notice.fingerprint)
                continue
            ALERT_NOTIFICATIONS.labels(status=status, outcome=outcome.outcome).inc()
            outcomes.append(outcome)
        if failed:
            raise AlertsNotHandledError(
                f"{len(failed)} of {len(items)} alerts could not be handled "
                f"(fingerprints {', '.join(failed)}); the others were; the sender's retry "
                "handles the rest and repeats nothing"
            )
        return WebhookReply.of(outcomes)

    async def workflow_finished(
        self, workflow_id: str, status: str, finished: WorkflowRecord | None = None
    ) -> None:
        """An investigation of an alert no strategy covers has ended: escalate with what it
        found. Told by the status hook, so a run recovered after a crash still escalates;
        `finished` is the workflow's row when the hook has it."""
        if status not in TERMINAL_STATUSES:
            return
        workflow = finished or await self._workflows.get(workflow_id)
        alert = (workflow.request or {}).get("alert") or {}
        if workflow.source != "alert" or alert.get("strategy") != INVESTIGATION:
            return
        record = await self._store.get(int(alert["alert_id"]))
        if record is None:
            return
        reason = record.reason or f"alert {record.alertname} matches no strategy"
        await self._approvals.notifier.escalated(
            key=f"{record.fingerprint}:{workflow_id}",
            reason=f"{reason}; the investigation ended {status}, a human must decide what to do",
            evidence={
                "alertname": record.alertname,
                "fingerprint": record.fingerprint,
                "labels": record.labels,
                "target": record.target,
                "environment": record.environment,
                "workflow_id": workflow_id,
                "findings": [finding(result) for result in workflow.results],
            },
        )
        if self._incidents is not None:
            await self._incidents.escalated(record)
        await self._store.note(record.id, f"investigated in {workflow_id} ({status}); escalated")

    async def _firing(self, alert: AlertNotice, *, request_id: str | None) -> AlertOutcome:
        decision = self._triage.decide(AlertFacts(alertname=alert.alertname, labels=alert.labels))
        recorded = await self._store.record_firing(alert, decision)
        record = recorded.record
        if not recorded.fresh:
            return _outcome(alert, "firing", record, "duplicate", reason=record.reason)
        if decision.action != "workflow":
            log.warning(
                "alert not acted on",
                extra={"alert": alert.alertname, "action": decision.action},
            )
            if decision.action == "escalated":
                await self._approvals.notifier.escalated(
                    key=f"{alert.fingerprint}:{alert.starts_at.isoformat()}",
                    reason=decision.reason or f"alert {alert.alertname} needs a person",
                    evidence=escalation_evidence(alert, decision),
                )
                if self._incidents is not None:
                    await self._incidents.escalated(record)
            return _outcome(alert, "firing", record, decision.action, reason=decision.reason)
        try:
            workflow = await self._engine.start(
                work_request(alert, decision, alert_id=record.id, request_id=request_id)
            )
        except Exception:
            await self._store.forget(record.id)  # let Alertmanager's retry start it again
            raise
        approval_id = workflow.approval_id if workflow.status == "awaiting_approval" else None
        record = await self._store.attach_workflow(
            record.id,
            workflow_id=workflow.id,
            approval_id=approval_id,
            note=f"workflow {workflow.id} started; it is {workflow.status}",
        )
        if record.status == "resolved":  # the resolution overtook the start
            await self._settle(record)
        return _outcome(
            alert,
            "firing",
            record,
            "workflow_started",
            workflow_status=workflow.status,
            reason=workflow.error,
        )

    async def _resolved(self, alert: AlertNotice) -> AlertOutcome:
        recorded = await self._store.record_resolved(alert)
        record = recorded.record
        if not recorded.fresh:
            repeat = "already recorded as resolved"
            if record.workflow_id is not None:  # the sender's retry of a delivery cut short
                _, note = await self._settle(record, repeat=True)
                repeat = f"{repeat}; {note}" if note else repeat
            return _outcome(alert, "resolved", record, "duplicate", reason=repeat)
        if self._incidents is not None:
            await self._incidents.resolved(record)
        if record.workflow_id is None:
            reason = record.reason
            if record.action == "workflow":  # the firing delivery is still starting it
                reason = "its workflow is still starting; the approval is withdrawn once asked"
            return _outcome(alert, "resolved", record, "resolved", reason=reason)
        withdrawn, note = await self._settle(record)
        outcome: Outcome = "withdrawn" if withdrawn else "resolved"
        return _outcome(alert, "resolved", record, outcome, reason=note)

    async def _settle(self, record: AlertRecord, *, repeat: bool = False) -> tuple[bool, str]:
        """After a resolution: withdraw the approval of the workflow that answers the alert (its
        own, or the one it merged into) if nobody has decided yet, no other alert it answers
        still fires, and alerts asked for it: a person's request stays theirs. The workflow
        reads the same resolution at its claim, wait and approval request (graphs/withdrawal.py),
        so what the note promises holds whenever it next runs, crash or busy lock; acting here
        only makes it sooner. A `repeat` (the sender retrying a delivery that died after the
        resolution was committed) acts again only on a workflow still waiting."""
        assert record.workflow_id is not None
        workflow = await self._workflows.get(record.workflow_id)
        if workflow.status == "merged" and workflow.merged_into:
            workflow = await self._workflows.get(workflow.merged_into)
        if repeat and workflow.status not in ("awaiting_approval", "waiting_for_target"):
            return False, ""
        if workflow.source != ALERT_SOURCE and not workflow.terminal:
            note = f"workflow {workflow.id} was asked for by {workflow.requester}; it stays theirs"
            await self._store.note(record.id, note)
            return False, note
        others = await self._store.others_firing(workflow.id, besides=record.id)
        if others and not workflow.terminal:
            note = f"workflow {workflow.id} goes on: {others} other alerts merged into it fire"
            await self._store.note(record.id, note)
            return False, note
        withdrawn, note = await self._withdraw(record, workflow)
        await self._store.note(record.id, note)
        return withdrawn, note

    async def _withdraw(self, record: AlertRecord, workflow: WorkflowRecord) -> tuple[bool, str]:
        if workflow.terminal:
            return False, f"workflow {workflow.id} had already ended {workflow.status}"
        if workflow.status == "waiting_for_target":  # it would ask once the target frees
            reason = (
                f"alert {record.alertname} resolved while its recovery waited for the target; "
                "the recovery is no longer needed"
            )
            self._engine.answer_gate(
                workflow_id=workflow.id, decision={"withdrawn": reason}, approval_id=None
            )
            return True, f"workflow {workflow.id} withdrawn: {reason}"
        if workflow.approval_id is not None:  # asking, or about to (named before its pause)
            reason = (
                f"alert {record.alertname} resolved before anyone decided; the recovery is no "
                "longer needed"
            )
            try:
                if await self._approvals.withdraw(
                    workflow.approval_id, actor=REQUESTER, reason=reason
                ):
                    return True, f"approval {workflow.approval_id} withdrawn: {reason}"
            except ConflictError as exc:  # decided: a run it let go of goes on
                if workflow.status != "running":
                    return False, f"approval {workflow.approval_id} was not withdrawn: {exc}"
        if workflow.status == "running":
            return False, f"workflow {workflow.id} is running; it is left to finish"
        return False, (
            f"workflow {workflow.id} is {workflow.status}; it neither asks for approval nor "
            "changes anything for this alert: should it get that far, it sees the alert "
            "resolved and ends withdrawn"
        )


def _refused(alert: RefusedAlert) -> AlertOutcome:
    log.warning("alert refused", extra={"index": alert.index, "reason": alert.reason})
    return AlertOutcome(
        fingerprint=alert.fingerprint,
        alertname=alert.alertname,
        status=alert.status,
        outcome="refused",
        alert_id=None,
        received=0,
        reason=alert.reason,
    )


def _notice(alert: AlertmanagerAlert) -> AlertNotice:
    return AlertNotice(
        fingerprint=alert.fingerprint,
        alertname=alert.alertname,
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at,
        ends_at=alert.ended_at,
    )


def _outcome(
    alert: AlertNotice,
    status: AlertStatus,
    record: AlertRecord,
    outcome: Outcome,
    *,
    workflow_status: str | None = None,
    reason: str | None = None,
) -> AlertOutcome:
    return AlertOutcome(
        fingerprint=alert.fingerprint,
        alertname=alert.alertname,
        status=status,
        outcome=outcome,
        alert_id=record.id,
        received=record.received,
        workflow_id=record.workflow_id,
        workflow_status=workflow_status or record.workflow_status,
        approval_id=record.approval_id,
        strategy=record.strategy,
        target=record.target,
        environment=record.environment,
        reason=reason,
    )


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())
