"""Drive workflow threads: one process at a time per thread, every resume checked first.

LangGraph neither locks a thread nor stops two processes from resuming it, so every run of a
thread happens under the thread's advisory lock, and a resume first re-reads the checkpoint to
confirm the interrupt it answers is still pending.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from uuid import UUID

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from shared.lib.approvals.decisions import gate_decision
from shared.lib.approvals.models import ApprovalRecord, ApprovalStatus
from shared.lib.approvals.store import ApprovalStore
from shared.lib.errors import ConflictError
from shared.lib.metrics import APPROVAL_EXPIRATIONS, APPROVAL_WAIT, WORKFLOW_DURATION, WORKFLOWS
from shared.lib.notifications.models import NotificationEvent
from shared.lib.notifications.service import Notifier
from shared.lib.workflows.locks import WorkflowLocks
from shared.lib.workflows.models import WorkRequest
from shared.lib.workflows.store import TERMINAL_STATUSES, WorkflowRecord, WorkflowStore

log = logging.getLogger(__name__)

Graph = CompiledStateGraph[WorkflowState, WorkflowContext, WorkflowState, WorkflowState]

_SKIP = object()

# How long a resume waits for the thread's lock before leaving the thread to recovery.
RESUME_LOCK_WAIT_S = 30.0

# How long POST /orchestrate waits for a workflow to leave planning before answering.
START_WAIT_S = 15.0


class WorkflowEngine:
    def __init__(
        self,
        *,
        graph: Graph,
        context: WorkflowContext,
        approvals: ApprovalStore,
        workflows: WorkflowStore,
        locks: WorkflowLocks,
        notifier: Notifier | None = None,
    ) -> None:
        self._graph = graph
        self._context = context
        self._approvals = approvals
        self._workflows = workflows
        self._locks = locks
        self._tasks: set[asyncio.Task[None]] = set()
        self._milestones: dict[str, asyncio.Event] = {}
        self.notifier = notifier or Notifier.silent(approvals=approvals, workflows=workflows)
        context.on_status = self._status_changed

    async def start(self, request: WorkRequest) -> WorkflowRecord:
        """Record the workflow, drive it in the background, answer once it has a status."""
        workflow_id = f"wf-{uuid.uuid4().hex[:16]}"
        await self._workflows.create(
            workflow_id=workflow_id,
            source=request.source,
            requester=request.requester,
            request=request.model_dump(mode="json"),
            request_id=request.request_id,
        )
        milestone = self._milestones.setdefault(workflow_id, asyncio.Event())
        graph_input: WorkflowState = {
            "workflow_id": workflow_id,
            "request": request.model_dump(mode="json"),
        }
        task = self._spawn(self._drive(workflow_id, graph_input, request_id=request.request_id))
        reached = asyncio.ensure_future(milestone.wait())
        try:
            await asyncio.wait(
                [task, reached], timeout=START_WAIT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            reached.cancel()
            self._milestones.pop(workflow_id, None)
        return await self._workflows.get(workflow_id)

    async def resume_decided(self, approval_id: UUID, *, force: bool = False) -> bool:
        """Resume the workflow of a resolved approval; exactly one caller wins the claim."""
        record = await self._approvals.get(approval_id)
        decision = gate_decision(record)
        if decision is None:
            return False
        if not await self._approvals.claim_resume(approval_id) and not force:
            return False
        APPROVAL_WAIT.labels(risk_level=record.risk_level).observe(_wait_seconds(record))
        self._spawn(
            self._drive(
                record.workflow_id,
                Command(resume=decision.model_dump(mode="json")),
                approval_id=str(approval_id),
            )
        )
        return True

    async def resume(self, workflow_id: str) -> str:
        """POST /resume: continue a stopped workflow; idempotent. Says what it did."""
        record = await self._workflows.get(workflow_id)
        if record.status == "awaiting_approval" and record.approval_id is not None:
            approval = await self._approvals.get(record.approval_id)
            if gate_decision(approval) is None:
                raise ConflictError(
                    f"workflow '{workflow_id}' awaits approval '{record.approval_id}'; approve "
                    "or reject it first (POST /approve/{id} or /reject/{id})"
                )
            await self.resume_decided(record.approval_id, force=True)
            return "resuming after decision"
        # A run that died with an internal error is marked failed but its checkpoint still has
        # steps to run; a workflow that ended in its report node has none.
        snapshot = await self._graph.aget_state(
            _run_config(workflow_id, request_id=None, approval_id=None)
        )
        if snapshot.values and not snapshot.next:
            return f"already {record.status}"
        self._spawn(self._drive(workflow_id, None))
        return "resuming"

    async def withdraw(self, approval_id: UUID, *, actor: str, reason: str) -> bool:
        """Withdraw a pending approval (its cause went away) and end its workflow."""
        record = await self._approvals.resolve(
            approval_id=approval_id, status=ApprovalStatus.WITHDRAWN, actor=actor, reason=reason
        )
        if record is None:
            return False
        await self.notifier.approval_resolved(record, event=NotificationEvent.APPROVAL_WITHDRAWN)
        await self.resume_decided(approval_id)
        return True

    async def expire_due(self) -> int:
        """Resolve approvals past their TTL and resume their workflows to a terminal state."""
        expired = await self._approvals.expire_due()
        for record in expired:
            APPROVAL_EXPIRATIONS.labels(risk_level=record.risk_level).inc()
            await self.notifier.approval_resolved(record, event=NotificationEvent.APPROVAL_EXPIRED)
            await self.resume_decided(record.id)
        return len(expired)

    async def recover(self, *, grace_s: float = 30.0) -> int:
        """Pick up threads whose driver died: decided-but-not-resumed, or stopped mid-run."""
        recovered = 0
        for approval_id in await self._approvals.decided_not_resumed(older_than_s=grace_s):
            recovered += await self.resume_decided(approval_id, force=True)
        # A run mid-execution holds its lock, so "running" needs no grace; a workflow being
        # created is locked only a moment after its row is written, so "planning" gets one.
        stalled = await self._workflows.in_status(["running"])
        stalled += await self._workflows.in_status(["planning"], idle_s=grace_s)
        for workflow_id in stalled:
            if workflow_id in self._milestones:
                continue  # started by this process moments ago
            self._spawn(self._drive(workflow_id, None))
            recovered += 1
        return recovered

    async def drain(self, timeout_s: float = 10.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    def _spawn(self, coroutine: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _drive(
        self,
        workflow_id: str,
        graph_input: WorkflowState | Command[Any] | None,
        *,
        request_id: str | None = None,
        approval_id: str | None = None,
    ) -> None:
        # A resume waits for a run still reaching its pause; recovery never waits.
        wait_s = RESUME_LOCK_WAIT_S if isinstance(graph_input, Command) else 0.0
        async with self._locks.holding(workflow_id, wait_s=wait_s) as won:
            if not won:
                log.info("workflow busy elsewhere", extra={"workflow_id": workflow_id})
                return
            config = _run_config(workflow_id, request_id=request_id, approval_id=approval_id)
            run_input = await self._input_to_run(workflow_id, config, graph_input, approval_id)
            if run_input is _SKIP:
                return
            try:
                await self._graph.ainvoke(
                    run_input, config, context=self._context, durability="sync"
                )
            except Exception as error:
                log.exception("workflow run failed", extra={"workflow_id": workflow_id})
                await self._workflows.update(
                    workflow_id,
                    status="failed",
                    event="error",
                    error=f"internal error: {error}; continue with POST /resume/{workflow_id}",
                )
                await self._status_changed(workflow_id, "failed")

    async def _input_to_run(
        self,
        workflow_id: str,
        config: RunnableConfig,
        graph_input: WorkflowState | Command[Any] | None,
        approval_id: str | None,
    ) -> Any:
        """Re-read the checkpoint under the lock: answer only the interrupt still pending for
        this approval, continue only an unfinished run, start only a thread never started."""
        snapshot = await self._graph.aget_state(config)
        if isinstance(graph_input, Command):
            pending = [i.value.get("approval_id") for i in snapshot.interrupts]
            return graph_input if approval_id in pending else _SKIP
        if snapshot.interrupts:
            return _SKIP
        if snapshot.values:
            return None if snapshot.next and graph_input is None else _SKIP
        if graph_input is not None:
            return graph_input
        record = await self._workflows.get(workflow_id)  # never checkpointed: start it afresh
        if record.terminal:
            return _SKIP
        return {"workflow_id": workflow_id, "request": record.request}

    async def _status_changed(self, workflow_id: str, status: str) -> None:
        milestone = self._milestones.get(workflow_id)
        if milestone is not None:
            milestone.set()
        if status in TERMINAL_STATUSES:
            WORKFLOWS.labels(status=status).inc()
            record = await self._workflows.get(workflow_id)
            WORKFLOW_DURATION.labels(status=status).observe(
                (record.updated_at - record.created_at).total_seconds()
            )
        await self.notifier.status_changed(workflow_id, status)


def _run_config(
    workflow_id: str, *, request_id: str | None, approval_id: str | None
) -> RunnableConfig:
    metadata = {"workflow_id": workflow_id, "thread_id": workflow_id}
    if request_id:
        metadata["request_id"] = request_id
    if approval_id:
        metadata["approval_id"] = approval_id
    return {
        "configurable": {"thread_id": workflow_id},
        "metadata": metadata,
        "run_name": "devops-workflow",
        "tags": [f"workflow:{workflow_id}"],
    }


def _wait_seconds(record: ApprovalRecord) -> float:
    end = record.decided_at or record.created_at
    return max((end - record.created_at).total_seconds(), 0.0)
