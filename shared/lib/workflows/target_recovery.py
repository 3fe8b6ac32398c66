"""What the sweeper puts right around target leases after a process died (docs/durability.md).

- A workflow `waiting_for_target` whose owner has let go (ended, or its lease ran out) is
  resumed with the release, and re-assessed from its risk on.
- One whose run died after `claim_targets` wrote `waiting_for_target` and before its pause was
  checkpointed (or after a resume began) is continued from its last checkpoint, like any
  stalled run: the thread's advisory lock, tried without waiting, tells a live run from a dead
  one (`WorkflowEngine._drive`).
- An owner whose run died between writing its final status and releasing its leases has them
  freed and its merged requests told (`TargetLeases.finish`, once), under the owner's lock (a
  live run finishing its report holds it); when its report was cut short, its end was never
  announced (the notification, the metrics, the waiters): the engine announces it.

The engine drives what these functions find; they only read and release.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from shared.lib.workflows.leases import TargetLeases
from shared.lib.workflows.locks import WorkflowLocks
from shared.lib.workflows.store import WorkflowStore
from shared.lib.workflows.threads import run_config, unfinished

Graph = CompiledStateGraph[Any, Any, Any, Any]

# The graph's last node (graphs/workflow.py): it writes the final status, releases the leases,
# then announces the end. A thread still due to run it was killed before it announced.
REPORT_NODE = "report"


async def waiters_to_move(
    graph: Graph, workflows: WorkflowStore, leases: TargetLeases | None
) -> list[tuple[str, Command[Any] | None]]:
    """(workflow id, how to drive it) for each workflow waiting for a target that can move:
    a Command answering its wait when its owner has let go; None (continue from the last
    checkpoint, a run's recovery) when its thread is not paused at its wait at all."""
    moves: list[tuple[str, Command[Any] | None]] = []
    for workflow_id in await workflows.in_status(["waiting_for_target"]):
        snapshot = await graph.aget_state(
            run_config(workflow_id, request_id=None, approval_id=None)
        )
        owners = [
            i.value.get("waiting_for_target")
            for i in snapshot.interrupts
            if isinstance(i.value, dict) and "waiting_for_target" in i.value
        ]
        if not owners:
            if unfinished(snapshot):  # killed short of its pause, or after its resume began
                moves.append((workflow_id, None))
            continue
        if leases is not None and await leases.holds(str(owners[0])):
            continue
        moves.append((workflow_id, Command(resume={"released": owners[0]})))
    return moves


async def finish_ended_owners(
    graph: Graph, leases: TargetLeases, locks: WorkflowLocks
) -> list[tuple[str, str]]:
    """Free the leases of workflows that ended without releasing them and tell their merged
    requests; (workflow id, status) of those whose end is still to be announced."""
    unannounced: list[tuple[str, str]] = []
    for owner, status in await leases.ended_owners():
        async with locks.holding(owner) as won:
            if not won:
                continue  # its run is live: its report releases them
            snapshot = await graph.aget_state(run_config(owner, request_id=None, approval_id=None))
            freed = await leases.finish(owner, status)
            if freed and REPORT_NODE in snapshot.next:
                unannounced.append((owner, status))
    return unannounced
