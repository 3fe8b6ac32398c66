"""Drive workflow threads: one process at a time per thread, every resume checked first.

LangGraph neither locks a thread nor stops two processes from resuming it, so every run of a
thread happens under the thread's advisory lock, and a resume first re-reads the checkpoint to
confirm the interrupt it answers is still pending.

The engine knows the graph only as a compiled LangGraph graph and its runtime context as an
opaque object, so this package does not import `graphs/` (which imports it). Whoever builds
the context points its `on_status` hook at `status_changed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Interrupt
from langsmith.utils import tracing_is_enabled

from shared.lib.db.checkpointer import (
    PooledPostgresSaver,
    reusing_latest_read,
    task_writes_sent_with_checkpoints,
)
from shared.lib.metrics import WORKFLOW_DURATION, WORKFLOWS
from shared.lib.notifications.service import Notifier
from shared.lib.principals import Principal
from shared.lib.workflows.admission import PlanningSlots
from shared.lib.workflows.changes import StatusChanges
from shared.lib.workflows.leases import TargetLeases
from shared.lib.workflows.locks import WorkflowLocks
from shared.lib.workflows.models import WorkRequest, ensure_readable
from shared.lib.workflows.store import TERMINAL_STATUSES, WorkflowRecord, WorkflowStore
from shared.lib.workflows.target_recovery import finish_ended_owners, waiters_to_move
from shared.lib.workflows.threads import run_config, unfinished

log = logging.getLogger(__name__)

Graph = CompiledStateGraph[Any, Any, Any, Any]

_SKIP = object()
_PAUSED = object()  # at its gate already: report the pause again, run nothing

# How long a resume waits for the thread's lock before leaving the thread to recovery.
RESUME_LOCK_WAIT_S = 30.0

# How long POST /orchestrate waits for a workflow to leave planning before answering.
START_WAIT_S = 15.0

# A waiter re-reads the record this often, for status changes made by another replica.
SETTLE_POLL_S = 0.5


PauseHandler = Callable[[str, str], Awaitable[None]]
"""Told (workflow id, approval id) once a run's pause at its gate is in the checkpoint."""


async def _ignore_pause(workflow_id: str, approval_id: str) -> None:
    return None


class WorkflowEngine:
    def __init__(
        self,
        *,
        graph: Graph,
        context: object,
        workflows: WorkflowStore,
        locks: WorkflowLocks,
        notifier: Notifier,
        leases: TargetLeases | None = None,
        planning_slots: int | None = None,
    ) -> None:
        """`planning_slots`: how many new workflows plan at once (AGENT_PLANNING_SLOTS); None,
        no limit. Resumes and recovery never wait for one (see `admission`)."""
        self._graph = graph
        self._leases = leases
        self._context = context
        self._workflows = workflows
        self._locks = locks
        self._notifier = notifier
        self._tasks: set[asyncio.Task[None]] = set()
        self._milestones: dict[str, asyncio.Event] = {}
        self._changes = StatusChanges()
        self._on_pause: PauseHandler = _ignore_pause
        self._slots = PlanningSlots(planning_slots, patience_s=START_WAIT_S)

    def on_pause(self, handler: PauseHandler) -> None:
        """Who hears of a durable pause: it marks the workflow `awaiting_approval` and answers
        at once an approval that was settled while the run had not reached its pause yet."""
        self._on_pause = handler

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
        graph_input = {"workflow_id": workflow_id, "request": request.model_dump(mode="json")}
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

    async def settle(
        self,
        workflow_id: str,
        *,
        timeout_s: float,
        answered: UUID | None = None,
        reader: Principal | None = None,
    ) -> WorkflowRecord:
        """Wait until the workflow ends or waits for approvers, or `timeout_s` passes; the
        record as it then is. Woken at once by this process's runs, and polls for others'.
        A pause on `answered` (an approval the caller already decided) does not count.
        A `reader` who may not read it is refused (ForbiddenError) before any wait."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            with self._changes.watching(workflow_id) as change:
                record = await self._workflows.get(workflow_id)
                if reader is not None:
                    ensure_readable(reader, workflow_id=workflow_id, requester=record.requester)
                    reader = None  # checked once: the requester never changes
                remaining = deadline - loop.time()
                waiting = record.status == "awaiting_approval" and (
                    answered is None or record.approval_id != answered
                )
                if record.terminal or waiting or remaining <= 0:
                    return record
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(change.wait(), timeout=min(remaining, SETTLE_POLL_S))

    async def pause_point(self, workflow_id: str) -> dict[str, str | None]:
        """Where the thread stands now (a decision records it): its latest checkpoint id and,
        with tracing on, the trace id of the run that paused there."""
        saver = self._graph.checkpointer
        if not isinstance(saver, PooledPostgresSaver):
            raise TypeError("the engine's graph runs on PooledPostgresSaver (runtime.py)")
        # The checkpoint row's id and metadata: not a state read, which decodes its values.
        checkpoint_id, metadata = await saver.latest_pointer(workflow_id)
        trace_id = metadata.get("trace_id")
        return {"checkpoint_id": checkpoint_id, "trace_id": str(trace_id) if trace_id else None}

    def answer_gate(
        self, *, workflow_id: str, decision: dict[str, Any], approval_id: str | None
    ) -> None:
        """Resume a paused thread with a decision, in the background; only the interrupt still
        pending for `approval_id` is answered (checked under the thread's lock). None answers
        a wait for a target, which has no approval."""
        self._spawn(self._drive(workflow_id, Command(resume=decision), approval_id=approval_id))

    async def continue_run(self, workflow_id: str) -> str:
        """Continue a run that stopped between steps (not at its gate); says what it did."""
        record = await self._workflows.get(workflow_id)
        # A run that died with an internal error is marked failed but its checkpoint still has
        # steps to run; a workflow that ended in its report node has none.
        snapshot = await self._graph.aget_state(
            run_config(workflow_id, request_id=None, approval_id=None)
        )
        if snapshot.values and not unfinished(snapshot):
            return f"already {record.status}"
        self._spawn(self._drive(workflow_id, None))
        return "resuming"

    async def recover_stalled(self, *, grace_s: float = 30.0) -> int:
        """Pick up threads whose driver died mid-run or while planning."""
        # A run mid-execution holds its lock, so "running" needs no grace; a workflow being
        # created is locked only a moment after its row is written, so "planning" gets one.
        stalled = await self._workflows.in_status(["running"])
        stalled += await self._workflows.in_status(["planning"], idle_s=grace_s)
        recovered = 0
        for workflow_id in stalled:
            if workflow_id in self._milestones or self._slots.knows(workflow_id):
                continue  # started by this process moments ago, or waiting for its turn
            self._spawn(self._drive(workflow_id, None))
            recovered += 1
        return recovered

    async def resume_waiting(self, *, release_expired: bool = True) -> int:
        """Move on the workflows waiting for a target: one whose owner has let go (ended, or
        its lease ran out) runs again from its risk assessment and claims anew; one whose run
        died before its wait was checkpointed continues from its checkpoint (see
        `target_recovery`). `release_expired`: first clear what owners left behind (the
        sweeper's job): leases past their time limit, and those of a workflow that ended
        without releasing them (its end announced if it never was)."""
        if self._leases is not None and release_expired:
            await self._leases.release_expired()  # a lease past its time limit lets go
            ended = await finish_ended_owners(self._graph, self._leases, self._locks)
            for owner, status in ended:
                await self.status_changed(owner, status)
            if ended:
                return 0  # each end announced moves the waiters on (status_changed)
        moves = await waiters_to_move(self._graph, self._workflows, self._leases)
        for workflow_id, answer in moves:
            self._spawn(self._drive(workflow_id, answer))
        return len(moves)

    def background(self, coroutine: Any) -> None:
        """Run work the engine owns (drained with it), off a request's path."""
        self._spawn(coroutine)

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
        graph_input: dict[str, Any] | Command[Any] | None,
        *,
        request_id: str | None = None,
        approval_id: str | None = None,
    ) -> None:
        # A resume waits for a run still reaching its pause; recovery never waits.
        wait_s = RESUME_LOCK_WAIT_S if isinstance(graph_input, Command) else 0.0
        fresh = isinstance(graph_input, dict)
        async with (
            self._slots.planning(workflow_id) if fresh else contextlib.nullcontext(),
            self._locks.holding(workflow_id, wait_s=wait_s) as won,
        ):
            if not won:
                log.info("workflow busy elsewhere", extra={"workflow_id": workflow_id})
                return
            config = run_config(workflow_id, request_id=request_id, approval_id=approval_id)
            if tracing_is_enabled():
                # The root run's id is its LangSmith trace id; the checkpoint metadata keeps it.
                trace_id = uuid.uuid4()
                config["run_id"] = trace_id
                config.setdefault("metadata", {})["trace_id"] = str(trace_id)
            with reusing_latest_read():  # the run starts from the checkpoint read here
                await self._run(workflow_id, config, graph_input, approval_id)

    async def _run(
        self,
        workflow_id: str,
        config: RunnableConfig,
        graph_input: dict[str, Any] | Command[Any] | None,
        approval_id: str | None,
    ) -> None:
        run_input = await self._input_to_run(workflow_id, config, graph_input, approval_id)
        if run_input is _SKIP:
            return
        if run_input is _PAUSED:
            await self._report_pause(workflow_id, config)
            return
        try:
            async with task_writes_sent_with_checkpoints(self._graph.checkpointer):
                output = await self._graph.ainvoke(
                    run_input, config, context=self._context, durability="sync"
                )
            # The run's own output names the interrupts it stopped at (durable already):
            # no need to read back the checkpoint it just wrote.
            stopped = output.get("__interrupt__", []) if isinstance(output, dict) else None
            await self._report_pause(workflow_id, config, stopped)
        except Exception as error:
            log.exception("workflow run failed", extra={"workflow_id": workflow_id})
            await self._workflows.update(
                workflow_id,
                status="failed",
                event="error",
                error=f"internal error: {error}; continue with POST /resume/{workflow_id}",
            )
            await self.status_changed(workflow_id, "failed")

    async def _report_pause(
        self, workflow_id: str, config: RunnableConfig, stopped: Sequence[Interrupt] | None = None
    ) -> None:
        """A run that stopped at an interrupt paused durably (`durability="sync"`): say so.
        `stopped`: the interrupts the run reported; None reads them from the checkpoint."""
        if stopped is None:
            stopped = (await self._graph.aget_state(config)).interrupts
        for pending in stopped:
            approval_id = pending.value.get("approval_id")
            if approval_id:
                await self._on_pause(workflow_id, str(approval_id))

    async def _input_to_run(
        self,
        workflow_id: str,
        config: RunnableConfig,
        graph_input: dict[str, Any] | Command[Any] | None,
        approval_id: str | None,
    ) -> Any:
        """Re-read the checkpoint under the lock: answer only the interrupt still pending for
        this approval, continue only an unfinished run, start only a thread never started."""
        snapshot = await self._graph.aget_state(config)
        if isinstance(graph_input, Command):
            pending = [i.value.get("approval_id") for i in snapshot.interrupts]
            if approval_id in pending:
                return graph_input
            if unfinished(snapshot) and not snapshot.interrupts:
                # The process died before the gate's pause was checkpointed: run on to the
                # pause; reaching it answers the settled approval (see on_pause).
                log.warning(
                    "resume found the run short of its pause; running it to the pause first",
                    extra={"workflow_id": workflow_id, "approval_id": approval_id},
                )
                return None
            log.warning(
                "resume found no pending interrupt for this approval; nothing to answer",
                extra={
                    "workflow_id": workflow_id,
                    "approval_id": approval_id,
                    "pending": pending,
                    "next": list(snapshot.next),
                },
            )
            return _SKIP
        if snapshot.interrupts:
            # Paused, but whoever paused it may have died before saying so (recovery, /resume).
            return _PAUSED if graph_input is None else _SKIP
        if snapshot.values:
            if graph_input is not None:
                return _SKIP
            if unfinished(snapshot):
                return None
            log.warning(
                "recovery found the run finished but the workflow not; nothing left to run",
                extra={"workflow_id": workflow_id},
            )
            return _SKIP
        if graph_input is not None:
            return graph_input
        record = await self._workflows.get(workflow_id)  # never checkpointed: start it afresh
        if record.terminal:
            return _SKIP
        return {"workflow_id": workflow_id, "request": record.request}

    async def status_changed(
        self, workflow_id: str, status: str, record: WorkflowRecord | None = None
    ) -> None:
        """Wake a waiting start, count finished workflows, notify; `record`: the row as the
        status change left it, when the caller has it (read here otherwise)."""
        if status != "planning":
            self._slots.left_planning(workflow_id)
        milestone = self._milestones.get(workflow_id)
        if milestone is not None:
            milestone.set()
        self._changes.changed(workflow_id)
        if status in TERMINAL_STATUSES:
            if self._leases is not None:
                self._spawn(self._resume_waiting_logged())
            WORKFLOWS.labels(status=status).inc()
            record = record or await self._workflows.get(workflow_id)
            WORKFLOW_DURATION.labels(status=status).observe(
                (record.updated_at - record.created_at).total_seconds()
            )
        await self._notifier.status_changed(workflow_id, status)

    async def _resume_waiting_logged(self) -> None:
        try:
            await self.resume_waiting(release_expired=False)
        except Exception:  # the sweeper tries again; a release must not fail the run's end
            log.exception("re-assessing workflows waiting for a target failed")
