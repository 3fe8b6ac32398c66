"""A workflow's LangGraph thread as the engine addresses it: the run config (thread id,
metadata and tags for traces) and whether its checkpoint has work left."""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig
from langgraph.types import StateSnapshot


def unfinished(snapshot: StateSnapshot) -> bool:
    """Whether the thread has work left. `next` alone misses a checkpoint whose tasks all wrote
    their results (the input checkpoint once `__start__` ran): its successors are only worked
    out by the next step, so `next` is empty although the run has not begun."""
    return bool(snapshot.next or snapshot.tasks)


def run_config(
    workflow_id: str, *, request_id: str | None, approval_id: str | None
) -> RunnableConfig:
    metadata = {"workflow_id": workflow_id, "thread_id": workflow_id}
    metadata |= {k: v for k, v in (("request_id", request_id), ("approval_id", approval_id)) if v}
    return {
        "configurable": {"thread_id": workflow_id},
        "metadata": metadata,
        "run_name": "devops-workflow",
        "tags": [f"workflow:{workflow_id}"],
    }
