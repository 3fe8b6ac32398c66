"""A delivery of many alerts: recorded first (one transaction), answered at once, processed by a
task the engine owns. Alerts for a target already being recovered with the same operations are
merged into that workflow (the target's lease holder) instead of starting one each, so a storm
about a few targets makes at most one approval per target. The recovery sweep picks up rows a
dead process recorded but never processed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from shared.lib.alerts.models import AlertOutcome, RecoveryDecision
from shared.lib.alerts.queue import AlertQueue
from shared.lib.alerts.requests import work_request
from shared.lib.alerts.store import AlertNotice, AlertRecord, AlertStore
from shared.lib.alerts.triage import AlertFacts, AlertTriage
from shared.lib.catalog.models import Catalog
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.leases import lease_text

log = logging.getLogger(__name__)

# A delivery with more firing alerts than this is answered before its workflows start.
STORM_THRESHOLD = 50


class AlertStorm:
    def __init__(
        self,
        *,
        queue: AlertQueue,
        store: AlertStore,
        triage: AlertTriage,
        engine: WorkflowEngine,
        catalog: Catalog,
    ) -> None:
        self._queue = queue
        self._store = store
        self._triage = triage
        self._engine = engine
        self._catalog = catalog

    async def record(
        self, firing: Sequence[AlertNotice], *, request_id: str | None
    ) -> list[AlertOutcome]:
        """Record every alert now; start or merge their workflows in the background."""
        decisions = [self._decide(notice) for notice in firing]
        recorded = await self._queue.record_many(list(zip(firing, decisions, strict=True)))
        outcomes: list[AlertOutcome] = []
        queued: list[AlertRecord] = []
        for notice, decision, entry in zip(firing, decisions, recorded, strict=True):
            record = entry.record
            if not entry.fresh:
                outcome = "duplicate"
            elif decision.action == "workflow":
                outcome = "queued"
                queued.append(record)
            else:
                outcome = decision.action
            outcomes.append(
                AlertOutcome(
                    fingerprint=notice.fingerprint,
                    alertname=notice.alertname,
                    status="firing",
                    outcome=outcome,
                    alert_id=record.id,
                    received=record.received,
                    workflow_id=record.workflow_id,
                    strategy=record.strategy,
                    target=record.target,
                    environment=record.environment,
                    reason=decision.reason if outcome != "queued" else None,
                )
            )
        if queued:
            self._engine.background(self.process(queued, request_id=request_id))
        return outcomes

    async def process(self, records: list[AlertRecord], *, request_id: str | None) -> None:
        """One delivery's alerts, in order. Within it, the first alert per target and recovery
        starts (or merges into) a workflow, and the rest are answered by that one even once it
        has ended: a recovery that needed nobody's approval, and so ended at once, would
        otherwise be started again for each alert of the storm."""
        answered: dict[tuple[str, str, str], str] = {}
        for record in records:
            try:
                await self._one(
                    record, seen=record.claimed_at, request_id=request_id, answered=answered
                )
            except Exception:  # left recorded; the recovery sweep takes it again
                log.exception("queued alert not processed", extra={"alert_id": record.id})

    async def recover(self, *, grace_s: float) -> int:
        """Rows recorded but never processed (their process died): process them now."""
        left = await self._queue.unprocessed(grace_s=grace_s)
        for record in left:
            try:
                await self._one(record, seen=record.claimed_at, request_id=None)
            except Exception:
                log.exception("recovered alert not processed", extra={"alert_id": record.id})
        return len(left)

    async def _one(
        self,
        record: AlertRecord,
        *,
        seen: Any,
        request_id: str | None,
        answered: dict[tuple[str, str, str], str] | None = None,
    ) -> None:
        claimed = await self._queue.claim(record.id, seen=seen)
        if claimed is None:
            return  # another task took it, or it was linked meanwhile
        if claimed.status != "firing":
            await self._store.note(claimed.id, "resolved before its workflow started; none was")
            return
        started = await self._queue.started_for(claimed.id)
        if started is not None:  # the process died between starting and linking it
            await self._store.attach_workflow(
                claimed.id, workflow_id=started, approval_id=None, note="linked on recovery"
            )
            return
        notice = _notice(claimed)
        decision = self._decide(notice)
        if decision.action != "workflow":
            await self._store.note(claimed.id, f"{decision.action}: {decision.reason}")
            return
        operations = self._mutating(decision)
        key = (
            decision.environment or "-",
            decision.target or "",
            operations or str(decision.strategy),
        )
        if operations and decision.target:
            owner = await self._queue.lease_owner(
                environment=decision.environment or "-",
                target=decision.target,
                operations=operations,
            )
            if owner is not None:
                workflow_id, approval_id = owner
                if answered is not None:
                    answered[key] = workflow_id
                await self._queue.merge_into(
                    workflow_id, alert_id=claimed.id, requester="alertmanager", source="alert"
                )
                await self._store.attach_workflow(
                    claimed.id,
                    workflow_id=workflow_id,
                    approval_id=approval_id,
                    note=f"merged into workflow {workflow_id}, which already recovers "
                    f"{decision.environment}/{decision.target} with {operations}",
                )
                return
        # No live owner: one this delivery started may have ended already (no approval).
        earlier = answered.get(key) if answered is not None and decision.target else None
        if earlier is not None:
            note = f"answered by workflow {earlier}, started for an earlier alert of this delivery"
            await self._store.attach_workflow(
                claimed.id, workflow_id=earlier, approval_id=None, note=note
            )
            return
        workflow = await self._engine.start(
            work_request(notice, decision, alert_id=claimed.id, request_id=request_id)
        )
        approval_id = workflow.approval_id if workflow.status == "awaiting_approval" else None
        note = f"workflow {workflow.id} started; it is {workflow.status}"
        if workflow.merged_into:
            note = f"workflow {workflow.id} merged into {workflow.merged_into}"
        if answered is not None and decision.target:
            answered[key] = workflow.merged_into or workflow.id
        await self._store.attach_workflow(
            claimed.id, workflow_id=workflow.id, approval_id=approval_id, note=note
        )

    def _decide(self, notice: AlertNotice) -> RecoveryDecision:
        return self._triage.decide(AlertFacts(alertname=notice.alertname, labels=notice.labels))

    def _mutating(self, decision: RecoveryDecision) -> str:
        return lease_text(
            s
            for s in decision.steps
            if s.operation in self._catalog.operations and self._catalog.get(s.operation).mutates
        )


def _notice(record: AlertRecord) -> AlertNotice:
    return AlertNotice(
        fingerprint=record.fingerprint,
        alertname=record.alertname,
        labels=record.labels,
        annotations=record.annotations,
        starts_at=record.starts_at,
        source=record.source,
        links=record.links,
    )
