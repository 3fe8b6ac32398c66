"""Everything that settles an approval: a person's decision (REST, CLI, chat), a withdrawal
(its alert resolved), an expiry (its TTL passed), and the one resume each settlement causes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.lib.approvals.decisions import EXPIRY_SWEEPER, gate_decision
from shared.lib.approvals.models import (
    ApprovalRecord,
    ApprovalStatus,
    Decision,
    GateDecision,
)
from shared.lib.approvals.refusals import RefusalLog
from shared.lib.approvals.shown import shown_approval
from shared.lib.approvals.store import ApprovalStore
from shared.lib.errors import ConflictError, DomainError
from shared.lib.metrics import (
    APPROVAL_DECISIONS,
    APPROVAL_EXPIRATIONS,
    APPROVAL_WAIT,
    APPROVALS_PENDING,
)
from shared.lib.notifications.models import NotificationEvent
from shared.lib.notifications.service import Notifier
from shared.lib.planning.models import Plan
from shared.lib.principals import Principal
from shared.lib.risk.models import RiskTier
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.store import WorkflowStore

log = logging.getLogger(__name__)

# Approvals whose workflow this process knows (an approval never changes workflow), so a
# decision on one needs no read to find where its workflow paused; the oldest go first.
KNOWN_WORKFLOWS = 10_000


class DecisionView(BaseModel):
    approval_id: UUID
    workflow_id: str
    status: str
    approvals_received: int
    required_approvals: int
    resumed: bool


class ApprovalService:
    def __init__(
        self,
        *,
        store: ApprovalStore,
        workflows: WorkflowStore,
        engine: WorkflowEngine,
        notifier: Notifier,
        refusals: RefusalLog,
    ) -> None:
        self._store = store
        self._refusals = refusals
        self._workflows = workflows
        self._engine = engine
        self.notifier = notifier
        self._workflow_of: dict[UUID, str] = {}
        engine.on_pause(self.paused)

    async def paused(self, workflow_id: str, approval_id: str) -> None:
        """The gate's pause is durable: only now does the workflow await approval. A request
        settled before the pause was reached (the process died in between) is answered now."""
        record = await self._store.get_request(UUID(approval_id))
        self._remember(record.id, record.workflow_id)
        if record.status != ApprovalStatus.PENDING:  # settled: its decision needs the votes
            record = await self._store.get(record.id)
        decision = gate_decision(record)
        if decision is not None:
            log.warning(
                "approval settled before its pause was checkpointed; answering it now",
                extra={"workflow_id": workflow_id, "approval_id": approval_id},
            )
            self._engine.answer_gate(
                workflow_id=workflow_id,
                decision=decision.model_dump(mode="json"),
                approval_id=approval_id,
            )
            return
        await self._workflows.update(
            workflow_id,
            status="awaiting_approval",
            approval_id=record.id,
            event="approval_requested",
            detail={
                "approval_id": approval_id,
                "tier": record.risk_level,
                "approvals": record.required_approvals,
                "roles": sorted(record.allowed_roles),
            },
        )
        await self._engine.status_changed(workflow_id, "awaiting_approval")

    async def decide(
        self,
        *,
        principal: Principal,
        approval_id: UUID,
        decision: Decision,
        reason: str | None = None,
        plan: Plan | None = None,
        plan_hash: str | None = None,
        shown_hash: str | None = None,
        channel: str = "api",
    ) -> DecisionView:
        """Record one person's decision; when it settles the request, resume the workflow.

        The decision row keeps what the decider was shown: the hash of the rendered approval
        (`shown_hash`, refused if it no longer matches), the checkpoint of the pause and the
        trace id when tracing is on."""
        try:
            shown = await self._what_was_shown(approval_id, shown_hash, channel)
            result = await self._store.decide(
                approval_id=approval_id,
                actor=principal.name,
                roles=principal.roles,
                decision=decision,
                reason=reason,
                plan=plan,
                expected_plan_hash=plan_hash,
                shown=shown,
                claim_resume=True,
            )
        except DomainError as refused:
            await self._refusals.record(
                approval_id=str(approval_id),
                actor=principal.name,
                decision=decision,
                status_code=refused.status_code,
                reason=str(refused),
            )
            raise
        record = result.approval
        APPROVAL_DECISIONS.labels(decision=decision, risk_level=record.risk_level).inc()
        settled = gate_decision(record) if result.gate is not None else None
        if settled is not None:
            # Its resume was claimed in the decision's transaction: hand it to this process's
            # runner at once, and let the run start before the reply is written.
            self._hand_off(record, settled)
            await asyncio.sleep(0)
        await self.notifier.approval_decided(
            record, decision=decision, actor=principal.name, reason=reason
        )
        return DecisionView(
            approval_id=record.id,
            workflow_id=record.workflow_id,
            status=record.status,
            approvals_received=record.approvals_received,
            required_approvals=record.required_approvals,
            resumed=settled is not None,
        )

    async def _what_was_shown(
        self, approval_id: UUID, shown_hash: str | None, channel: str
    ) -> dict[str, Any]:
        if shown_hash is not None:
            record = await self._store.get(approval_id)
            if shown_hash != shown_approval(record).hash:
                raise ConflictError(
                    f"approval '{approval_id}' is not what you were shown (view "
                    f"{shown_hash[:12]}); open it again and decide on what it says now"
                )
            workflow_id = record.workflow_id
        else:  # nothing to compare: the workflow id is all this needs
            workflow_id = self._workflow_of.get(approval_id) or (
                (await self._store.get_request(approval_id)).workflow_id
            )
        pause = await self._engine.pause_point(workflow_id)
        return {"channel": channel, "hash": shown_hash, **pause}

    def _remember(self, approval_id: UUID, workflow_id: str) -> None:
        self._workflow_of[approval_id] = workflow_id
        if len(self._workflow_of) > KNOWN_WORKFLOWS:
            del self._workflow_of[next(iter(self._workflow_of))]

    async def withdraw(self, approval_id: UUID, *, actor: str, reason: str) -> bool:
        """Withdraw a pending approval (its cause went away) and end its workflow."""
        record = await self._store.resolve(
            approval_id=approval_id, status=ApprovalStatus.WITHDRAWN, actor=actor, reason=reason
        )
        if record is None:
            return False
        await self.notifier.approval_resolved(record, event=NotificationEvent.APPROVAL_WITHDRAWN)
        await self.resume_decided(approval_id)
        return True

    async def expire_due(self, *, actor: str = EXPIRY_SWEEPER) -> int:
        """Resolve approvals past their TTL and resume their workflows to a terminal state;
        `actor` is the person who asked for it, or the sweeper."""
        expired = await self._store.expire_due(actor=actor)
        for record in expired:
            APPROVAL_EXPIRATIONS.labels(risk_level=record.risk_level).inc()
            await self.notifier.approval_resolved(record, event=NotificationEvent.APPROVAL_EXPIRED)
            await self.resume_decided(record.id)
        return len(expired)

    async def count_pending(self) -> None:
        """Refresh the pending-approvals gauge, every tier set (0 when none waits)."""
        counts = await self._store.pending_by_tier()
        for tier in RiskTier:
            APPROVALS_PENDING.labels(risk_level=tier.value).set(counts.get(tier.value, 0))

    async def resume_decided(self, approval_id: UUID, *, force: bool = False) -> bool:
        """Resume the workflow of a settled approval; exactly one caller wins the claim."""
        record = await self._store.get(approval_id)
        decision = gate_decision(record)
        if decision is None:
            return False
        if not await self._store.claim_resume(approval_id) and not force:
            return False
        self._hand_off(record, decision)
        return True

    def _hand_off(self, record: ApprovalRecord, decision: GateDecision) -> None:
        """Resume the workflow of a settled approval whose resume this caller has claimed."""
        APPROVAL_WAIT.labels(risk_level=record.risk_level).observe(_wait_seconds(record))
        self._engine.answer_gate(
            workflow_id=record.workflow_id,
            decision=decision.model_dump(mode="json"),
            approval_id=str(record.id),
        )

    async def resume_workflow(self, workflow_id: str) -> str:
        """POST /resume: a paused workflow resumes through its settled approval; any other
        stopped run continues where it stopped. Idempotent; says what it did."""
        record = await self._workflows.get(workflow_id)
        if record.status == "awaiting_approval" and record.approval_id is not None:
            approval = await self._store.get(record.approval_id)
            if gate_decision(approval) is None:
                raise ConflictError(
                    f"workflow '{workflow_id}' awaits approval '{record.approval_id}'; approve "
                    "or reject it first (POST /approve/{id} or /reject/{id})"
                )
            await self.resume_decided(record.approval_id, force=True)
            return "resuming after decision"
        return await self._engine.continue_run(workflow_id)

    async def recover_decided(self, *, grace_s: float = 30.0) -> int:
        """Resume settled approvals whose resume never ran (the process died in between)."""
        recovered = 0
        for approval_id in await self._store.decided_not_resumed(older_than_s=grace_s):
            recovered += await self.resume_decided(approval_id, force=True)
        return recovered


def _wait_seconds(record: ApprovalRecord) -> float:
    end = record.decided_at or record.created_at
    return max((end - record.created_at).total_seconds(), 0.0)
