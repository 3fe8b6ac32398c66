"""A three-node graph that pauses at a gate, and what a saver stored for a thread: for the
checkpointer's tests."""

from __future__ import annotations

import uuid
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from shared.lib.db.pool import Pool


class GateState(TypedDict, total=False):
    plan: str
    evidence: dict[str, Any]  # with `notes`, two blobs in one checkpoint
    notes: list[str]
    decision: dict[str, Any]
    ran: bool


def _plan(state: GateState) -> dict[str, Any]:
    return {"plan": "restart web", "evidence": {"healthy": False}, "notes": ["5xx rising"]}


def _gate(state: GateState) -> dict[str, Any]:
    return {"decision": interrupt({"plan": state["plan"]})}


def _execute(state: GateState) -> dict[str, Any]:
    return {"ran": state["decision"]["outcome"] == "approved"}


def gate_graph() -> StateGraph[GateState]:
    graph = StateGraph(GateState)
    graph.add_node("plan", _plan)
    graph.add_node("gate", _gate)
    graph.add_node("execute", _execute)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "gate")
    graph.add_edge("gate", "execute")
    graph.add_edge("execute", END)
    return graph


def new_thread() -> RunnableConfig:
    return {"configurable": {"thread_id": f"t-{uuid.uuid4().hex}"}}


async def stored_rows(pool: Pool, thread_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """The thread's stored values: each checkpoint's inline values and updated channels, and
    the blobs (channel versions carry a random part, so they are left out)."""
    async with pool.connection() as conn:
        checkpoints = await (
            await conn.execute(
                "SELECT jsonb_build_array(checkpoint->'channel_values',"
                " checkpoint->'updated_channels') AS body, metadata FROM checkpoints"
                " WHERE thread_id = %s ORDER BY checkpoint_id",
                (thread_id,),
            )
        ).fetchall()
        blobs = await (
            await conn.execute(
                "SELECT channel, type, blob FROM checkpoint_blobs WHERE thread_id = %s"
                " ORDER BY channel, version",
                (thread_id,),
            )
        ).fetchall()
    return {
        "checkpoints": [(row["body"], row["metadata"]) for row in checkpoints],
        "blobs": [(row["channel"], row["type"], row["blob"]) for row in blobs],
    }


async def stored_writes(pool: Pool, thread_id: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT task_id, task_path, idx, channel, type, blob FROM checkpoint_writes"
                " WHERE thread_id = %s ORDER BY task_id, idx",
                (thread_id,),
            )
        ).fetchall()
    return [tuple(row.values()) for row in rows]
