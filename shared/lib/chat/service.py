"""The chat: one message in, one reply out, the session's history as memory.

Decisions ("yes, approve") go through the same path as POST /approve, as the caller. Anything
else is planned (LLM or offline); every step is checked by the runner before anything runs;
read-only steps the policy scores low run at once, everything else becomes a workflow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from shared.lib.approvals.models import ApprovalRecord
from shared.lib.approvals.service import ApprovalService
from shared.lib.approvals.store import ApprovalStore
from shared.lib.catalog import Catalog
from shared.lib.chat import references, replies
from shared.lib.chat.decisions import ChatDecisions
from shared.lib.chat.models import (
    ChatEvent,
    ChatHistory,
    ChatReply,
    ChatStatus,
    SessionContext,
    StepResult,
)
from shared.lib.chat.phrases import asks_for_pending, decision_in
from shared.lib.chat.store import ChatMessage, ChatSession, ChatStore
from shared.lib.chat.turn import Emit, Turn, quiet
from shared.lib.errors import DomainError
from shared.lib.execution.models import OperationCall
from shared.lib.execution.runner import OperationRunner, Refusal
from shared.lib.planning.conversation import ConversationPlanner, ConversationTurn, Proposal
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.principals import Principal
from shared.lib.risk.assessor import MutationHistory, RiskAssessor
from shared.lib.risk.models import RiskTier
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.models import WorkRequest, readable_by
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
    "waiting_for_target": "waiting_for_target",
}


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
        self._decisions = ChatDecisions(approvals=approvals, decisions=decisions)
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
        emit: Emit = quiet,
    ) -> ChatReply:
        """Answer one message, record both sides, remember what it was about."""
        earlier = await self._store.messages(session_id=session.id, last=HISTORY_MESSAGES)
        await self._store.add_message(session_id=session.id, role="user", content=message)
        turn = Turn(
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

    async def _answer(self, turn: Turn, earlier: list[ChatMessage]) -> ChatReply:
        decision = decision_in(turn.message)
        if decision is not None:
            return await self._decisions.decide(turn, decision)
        if asks_for_pending(turn.message):
            return await self._decisions.pending(turn)
        await turn.emit("planning", {"message": turn.message})
        reading = references.read(turn.message, turn.context)
        proposal = await self._planner.propose(
            text=reading.text,
            history=[
                ConversationTurn(role=m.role, content=m.content)
                for m in earlier
                if m.role in ("user", "assistant")
            ],
            context=reading.context,
        )
        if (question := references.question(reading, proposal)) is not None:
            return turn.reply(
                replies.with_notes(question, proposal),
                "needs_clarification",
                candidates=references.candidates(reading),
                planner=proposal.planner,
            )
        if not proposal.steps:
            return _unplanned(turn, proposal)
        references.remember(turn.context, proposal.steps)
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

    async def _carry_out(self, turn: Turn, proposal: Proposal) -> ChatReply:
        now, later = await self._split(proposal.steps)
        results = await self._run_now(turn, now) if now else []
        parts = [f"Plan: {proposal.rationale}"] if proposal.rationale else []
        if results:
            parts.append(replies.results(results))
        fields: dict[str, Any] = {"results": results, "planner": proposal.planner}
        status: ChatStatus = "answered"
        if later:
            record, gate, approval = await self._start(turn, later)
            parts.append(replies.workflow(record, approval))
            if gate is not record:
                parts.append(replies.merged_gate(gate, approval))
            status = _WORKFLOW_STATUSES.get(gate.status, "running")
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
        """(run now, run as a workflow): the reads before the first change run now, when policy
        scores them low; a read asked for after a change ("restart web and then show its
        logs") runs after it, in the workflow."""
        changes = [i for i, step in enumerate(steps) if self._catalog.get(step.operation).mutates]
        first_change = changes[0] if changes else len(steps)
        reads = steps[:first_change]
        if not reads:
            return [], steps
        assessment = await self._assessor.assess(Plan(steps=reads), history=self._history)
        if assessment.tier is not RiskTier.LOW:
            return [], steps
        return reads, steps[first_change:]

    async def _run_now(self, turn: Turn, steps: list[PlannedOperation]) -> list[StepResult]:
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
        self, turn: Turn, steps: list[PlannedOperation]
    ) -> tuple[WorkflowRecord, WorkflowRecord, ApprovalRecord | None]:
        """The started workflow; the one whose gate decides it (itself, or the workflow it was
        merged into); and that gate's approval, when it waits for one the caller may read."""
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
        gate = record
        if record.status == "merged" and record.merged_into:
            gate = await self._engine.settle(record.merged_into, timeout_s=0)  # as it is now
        approval = None
        if (
            gate.status == "awaiting_approval"
            and gate.approval_id is not None
            and readable_by(turn.principal, requester=gate.requester)
        ):
            approval = await self._approvals.get(gate.approval_id)
            turn.context.pending_approval_id = approval.id
            await turn.emit("awaiting_approval", replies.approval_event(gate, approval))
        elif record.status == "running":
            await turn.emit("executing", {"workflow_id": record.id, "approval": "not needed"})
        return record, gate, approval


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


def _unplanned(turn: Turn, proposal: Proposal) -> ChatReply:
    status: ChatStatus = "answered" if proposal.intent == "question" else "needs_clarification"
    if proposal.intent == "rejected":
        status = "refused"  # refused at planning: nothing ran and nothing goes to approvers
    return turn.reply(
        replies.with_notes(replies.clarification(proposal), proposal),
        status,
        candidates=proposal.candidates,
        planner=proposal.planner,
    )
