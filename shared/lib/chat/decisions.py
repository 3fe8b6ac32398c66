"""Decisions typed in chat, and "what is pending": the same paths as POST /approve, POST
/reject and GET /approvals/pending, as the caller. A message that talks about a decision
without plainly making one is asked about; nothing is recorded."""

from __future__ import annotations

from shared.lib.approvals.models import ApprovalRecord
from shared.lib.approvals.service import ApprovalService
from shared.lib.approvals.store import ApprovalStore
from shared.lib.chat import replies
from shared.lib.chat.models import ChatReply, ChatStatus
from shared.lib.chat.phrases import DecisionRequest, unclear
from shared.lib.chat.turn import Turn
from shared.lib.errors import DomainError
from shared.lib.principals import Principal
from shared.lib.workflows.models import lists_only_own

_DECISION_STATUSES: dict[str, ChatStatus] = {"approved": "approved", "rejected": "rejected"}


class ChatDecisions:
    def __init__(self, *, approvals: ApprovalStore, decisions: ApprovalService) -> None:
        self._approvals = approvals
        self._decisions = decisions

    async def decide(self, turn: Turn, request: DecisionRequest) -> ChatReply:
        approval_id = request.approval_id or turn.context.pending_approval_id
        if approval_id is None and request.named <= 1 and request.doubt is None:
            return await self._which_approval(turn)
        if (question := unclear(request, approval_id)) is not None:
            if request.doubt is not None and request.named == 1:  # what "approve it" means next
                turn.context.pending_approval_id = request.approval_id
            return turn.reply(question, "needs_clarification", approval_id=approval_id)
        assert approval_id is not None  # unclear() asks when none is known
        try:
            view = await self._decisions.decide(
                principal=turn.principal,
                approval_id=approval_id,
                decision=request.decision,
                reason=request.reason,
            )
        except DomainError as error:
            return turn.reply(
                f"I did not record your {request.decision}: {error}",
                "refused",
                approval_id=approval_id,
            )
        status = _DECISION_STATUSES.get(view.status, "awaiting_approval")
        text = replies.decided(
            status=view.status,
            decision=request.decision,
            workflow_id=view.workflow_id,
            approval_id=view.approval_id,
            received=view.approvals_received,
            required=view.required_approvals,
        )
        return turn.reply(text, status, workflow_id=view.workflow_id, approval_id=view.approval_id)

    async def pending(self, turn: Turn) -> ChatReply:
        """What GET /approvals/pending lists for the caller."""
        records = await self._listed(turn.principal)
        return turn.reply(
            replies.pending(records, caller=turn.principal.name),
            "answered",
            candidates=[str(record.id) for record in records],
        )

    async def _which_approval(self, turn: Turn) -> ChatReply:
        records = [
            record
            for record in await self._listed(turn.principal, roles=set(turn.principal.roles))
            if record.requester != turn.principal.name
        ]
        if not records:
            return turn.reply(
                "There is no approval in this conversation, and none is waiting for a "
                "decision you can make.",
                "needs_clarification",
            )
        text = "Which approval do you mean? Say 'approve <id>'.\n" + replies.pending(
            records, caller=turn.principal.name
        )
        return turn.reply(
            text, "needs_clarification", candidates=[str(record.id) for record in records]
        )

    async def _listed(
        self, principal: Principal, *, roles: set[str] | None = None
    ) -> list[ApprovalRecord]:
        return await self._approvals.list_pending(roles=roles, requester=lists_only_own(principal))
