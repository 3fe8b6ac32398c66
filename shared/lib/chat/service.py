"""The chat: one message in, one reply out, the session's history as memory.

Decisions ("yes, approve") go through the same path as POST /approve, as the caller. Anything
else is planned (LLM or offline); every step is checked by the runner before anything runs;
read-only steps the policy scores low run at once, everything else becomes a workflow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared.lib.approvals.models import ApprovalRecord
from shared.lib.approvals.service import ApprovalService
from shared.lib.approvals.store import ApprovalStore
from shared.lib.catalog import Catalog
from shared.lib.chat import replies
from shared.lib.chat.models import (
    ChatEvent,
    ChatHistory,
    ChatReply,
    ChatStatus,
    SessionContext,
    StepResult,
)
from shared.lib.chat.phrases import DecisionRequest, asks_for_pending, decision_in, unclear
from shared.lib.chat.store import ChatMessage, ChatSession, ChatStore
from shared.lib.errors import DomainError
from shared.lib.execution.models import OperationCall
from shared.lib.execution.runner import OperationRunner, Refusal
from shared.lib.planning.conversation import (
    ConversationContext,
    ConversationPlanner,
    ConversationTurn,
    Proposal,
)
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.principals import Principal
from shared.lib.risk.assessor import MutationHistory, RiskAssessor
from shared.lib.risk.models import RiskTier
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.models import WorkRequest
from shared.lib.workflows.store import WorkflowRecord

log = logging.getLogger(__name__)

HISTORY_MESSAGES = 12
# How long a chat turn waits for its reads to finish before answering with what it has.
READ_WAIT_S = 60.0
_WORKFLOW_STATUSES: dict[str, ChatStatus] = {
    "awaiting_approval": "awaiting_approval",
    "completed": "completed",
    "failed": "failed",
    "rejected": "rejected",
}

_DECISION_STATUSES: dict[str, ChatStatus] = {"approved": "approved", "rejected": "rejected"}

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


async def _quiet(event: str, data: dict[str, Any]) -> None:
    return None


@dataclass
class _Turn:
    """One message being answered."""

    session_id: UUID
    principal: Principal
    message: str
    request_id: str | None
    context: SessionContext
    emit: Emit

    def reply(self, text: str, status: ChatStatus, **fields: Any) -> ChatReply:
        return ChatReply(session_id=self.session_id, reply=text, status=status, **fields)


class ChatService:
    def __init__(
        self,
        *,
        store: ChatStore,
        engine: WorkflowEngine,
        planner: ConversationPlanner,
        runner: OperationRunner,
        assessor: RiskAssessor,
        history: MutationHistory,
        approvals: ApprovalStore,
        decisions: ApprovalService,
        catalog: Catalog,
    ) -> None:
        self._store = store
        self._engine = engine
        self._planner = planner
        self._runner = runner
        self._assessor = assessor
        self._history = history
        self._approvals = approvals
        self._decisions = decisions
        self._catalog = catalog
        self._tasks: set[asyncio.Task[None]] = set()

    async def open_session(self, *, session_id: UUID | None, principal: Principal) -> ChatSession:
        """The caller's session, or a new one; another principal's session is not found."""
        if session_id is None:
            return await self._store.create_session(principal=principal.name)
        return await self._store.session(session_id=session_id, principal=principal.name)

    async def history(self, *, session_id: UUID, principal: Principal) -> ChatHistory:
        session = await self._store.session(session_id=session_id, principal=principal.name)
        return ChatHistory(
            session_id=session.id,
            principal=session.principal,
            context=session.context,
            created_at=session.created_at,
            messages=await self._store.messages(session_id=session.id),
        )

    async def converse(
        self,
        *,
        session: ChatSession,
        principal: Principal,
        message: str,
        request_id: str | None = None,
        emit: Emit = _quiet,
    ) -> ChatReply:
        """Answer one message, record both sides, remember what it was about."""
        earlier = await self._store.messages(session_id=session.id, last=HISTORY_MESSAGES)
        await self._store.add_message(session_id=session.id, role="user", content=message)
        turn = _Turn(
            session_id=session.id,
            principal=principal,
            message=message,
            request_id=request_id,
            context=SessionContext.model_validate(session.context),
            emit=emit,
        )
        reply = await self._answer(turn, earlier)
        await self._store.add_message(
            session_id=session.id,
            role="assistant",
            content=reply.reply,
            workflow_id=reply.workflow_id,
            approval_id=reply.approval_id,
        )
        await self._store.set_context(
            session_id=session.id, context=turn.context.model_dump(mode="json")
        )
        await emit("result", reply.model_dump(mode="json"))
        return reply

    async def stream(
        self,
        *,
        session: ChatSession,
        principal: Principal,
        message: str,
        request_id: str | None = None,
    ) -> AsyncIterator[ChatEvent]:
        """The same turn as `converse`, as events: planning, executing, awaiting_approval,
        result (or error). The turn finishes even when the client goes away."""
        queue: asyncio.Queue[ChatEvent | None] = asyncio.Queue()

        async def emit(event: str, data: dict[str, Any]) -> None:
            await queue.put(ChatEvent(event, data))

        async def run() -> None:
            try:
                await self.converse(
                    session=session,
                    principal=principal,
                    message=message,
                    request_id=request_id,
                    emit=emit,
                )
            except DomainError as error:
                await emit("error", {"detail": str(error)})
            except Exception:  # the status line is sent already: the error must be an event
                log.exception("chat turn failed", extra={"session_id": str(session.id)})
                await emit("error", {"detail": "internal error; the service log has details"})
            finally:
                await queue.put(None)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        while (event := await queue.get()) is not None:
            yield event

    async def _answer(self, turn: _Turn, earlier: list[ChatMessage]) -> ChatReply:
        decision = decision_in(turn.message)
        if decision is not None:
            return await self._decide(turn, decision)
        if asks_for_pending(turn.message):
            return await self._pending(turn)
        await turn.emit("planning", {"message": turn.message})
        proposal = await self._planner.propose(
            text=turn.message,
            history=[
                ConversationTurn(role=m.role, content=m.content)
                for m in earlier
                if m.role in ("user", "assistant")
            ],
            context=ConversationContext(
                last_target=turn.context.last_target,
                last_environment=turn.context.last_environment,
            ),
        )
        if not proposal.steps:
            return _unplanned(turn, proposal)
        last = proposal.steps[-1]
        turn.context.last_target, turn.context.last_environment = last.target, last.environment
        refusals = [
            prepared
            for step in proposal.steps
            if isinstance(prepared := self._prepare(step), Refusal)
        ]
        if refusals:
            return turn.reply(
                replies.with_notes(replies.refusal(refusals), proposal),
                "refused",
                plan=replies.plan_view(proposal.steps),
                planner=proposal.planner,
            )
        return await self._carry_out(turn, proposal)

    async def _carry_out(self, turn: _Turn, proposal: Proposal) -> ChatReply:
        now, later = await self._split(proposal.steps)
        results = await self._run_now(turn, now) if now else []
        parts = [f"Plan: {proposal.rationale}"] if proposal.rationale else []
        if results:
            parts.append(replies.results(results))
        fields: dict[str, Any] = {"results": results, "planner": proposal.planner}
        status: ChatStatus = "answered"
        if later:
            record, approval = await self._start(turn, later)
            parts.append(replies.workflow(record, approval))
            status = _WORKFLOW_STATUSES.get(record.status, "running")
            fields.update(replies.workflow_fields(record, approval))
        return turn.reply(replies.with_notes("\n".join(parts), proposal), status, **fields)

    def _prepare(self, step: PlannedOperation) -> OperationCall | Refusal:
        """The runner's verdict on a step (protection, command policy...); runs nothing."""
        return self._runner.prepare(
            operation=step.operation,
            target=step.target,
            environment=step.environment,
            params=step.params,
        )

    async def _split(
        self, steps: list[PlannedOperation]
    ) -> tuple[list[PlannedOperation], list[PlannedOperation]]:
        """(run now, run as a workflow): reads run now only when policy scores them low."""
        reads = [step for step in steps if not self._catalog.get(step.operation).mutates]
        if not reads:
            return [], steps
        assessment = await self._assessor.assess(Plan(steps=reads), history=self._history)
        if assessment.tier is not RiskTier.LOW:
            return [], steps
        return reads, [step for step in steps if step not in reads]

    async def _run_now(self, turn: _Turn, steps: list[PlannedOperation]) -> list[StepResult]:
        """Reads the policy scores low run at once, as a workflow of their own: the same graph,
        ledger and tracing as every other step, answered as soon as it ends."""
        await turn.emit("executing", {"steps": replies.plan_view(steps), "approval": "not needed"})
        record = await self._engine.start(
            WorkRequest(
                source="chat",
                requester=turn.principal.name,
                text=turn.message,
                steps=steps,
                request_id=turn.request_id,
            )
        )
        record = await self._engine.settle(record.id, timeout_s=READ_WAIT_S)
        turn.context.last_workflow_id = record.id
        results = [
            _step_result(step, raw) for step, raw in zip(steps, record.results or [], strict=False)
        ]
        if not record.terminal:
            log.warning("chat read still running", extra={"workflow_id": record.id})
        return results

    async def _start(
        self, turn: _Turn, steps: list[PlannedOperation]
    ) -> tuple[WorkflowRecord, ApprovalRecord | None]:
        record = await self._engine.start(
            WorkRequest(
                source="chat",
                requester=turn.principal.name,
                text=turn.message,
                steps=steps,
                request_id=turn.request_id,
            )
        )
        turn.context.last_workflow_id = record.id
        approval = None
        if record.status == "awaiting_approval" and record.approval_id is not None:
            approval = await self._approvals.get(record.approval_id)
            turn.context.pending_approval_id = approval.id
            await turn.emit("awaiting_approval", replies.approval_event(record, approval))
        elif record.status == "running":
            await turn.emit("executing", {"workflow_id": record.id, "approval": "not needed"})
        return record, approval

    async def _decide(self, turn: _Turn, request: DecisionRequest) -> ChatReply:
        approval_id = request.approval_id or turn.context.pending_approval_id
        if approval_id is None and request.named <= 1:
            return await self._which_approval(turn)
        if (question := unclear(request, approval_id)) is not None:
            return turn.reply(question, "needs_clarification", approval_id=approval_id)
        assert approval_id is not None  # unclear() asks when several are named
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

    async def _which_approval(self, turn: _Turn) -> ChatReply:
        records = [
            record
            for record in await self._approvals.list_pending(roles=set(turn.principal.roles))
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

    async def _pending(self, turn: _Turn) -> ChatReply:
        records = await self._approvals.list_pending()
        return turn.reply(
            replies.pending(records, caller=turn.principal.name),
            "answered",
            candidates=[str(record.id) for record in records],
        )


def _step_result(step: PlannedOperation, raw: dict[str, Any]) -> StepResult:
    output = str(raw.get("stdout") or "")
    return StepResult(
        operation=step.operation,
        target=step.target,
        environment=step.environment,
        status=str(raw.get("status")),
        output=output[-replies.OUTPUT_CHARS :],
        truncated=bool(raw.get("truncated")) or len(output) > replies.OUTPUT_CHARS,
        reason=raw.get("reason"),
        data=raw.get("data") or {},
    )


def _unplanned(turn: _Turn, proposal: Proposal) -> ChatReply:
    status: ChatStatus = "answered" if proposal.intent == "question" else "needs_clarification"
    if proposal.intent == "rejected":
        status = "refused"  # refused at planning: nothing ran and nothing goes to approvers
    return turn.reply(
        replies.with_notes(replies.clarification(proposal), proposal),
        status,
        candidates=proposal.candidates,
        planner=proposal.planner,
    )
