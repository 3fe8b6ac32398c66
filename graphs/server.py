"""The graph LangGraph Server serves (`langgraph dev` / `langgraph up`, see langgraph.json).

The server calls `make_graph` for every run and compiles nothing itself; its own checkpointer
keeps the thread. The nodes need the agent's runtime context (planner, runner, the stores on
the agent's database), which the server cannot send as JSON, so it is built once per process
from the same settings as the service (`load_settings()`: AGENT_CONFIG_DIR, DATABASE_URL, ...)
and bound to every node. See docs/langgraph-server.md for what this path does not enforce.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from graphs import nodes
from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from graphs.workflow import Node, build_graph
from shared.lib.approvals.store import ApprovalStore
from shared.lib.config import load_agent_config
from shared.lib.db.database import Database, open_database
from shared.lib.errors import NotFoundError
from shared.lib.execution.ledger import ExecutionLedger
from shared.lib.execution.runner import OperationRunner
from shared.lib.executors.defaults import default_executors
from shared.lib.planning.factory import conversation_planner
from shared.lib.risk.assessor import RiskAssessor
from shared.lib.settings import load_settings
from shared.lib.workflows.models import WorkRequest
from shared.lib.workflows.store import WorkflowStore

log = logging.getLogger(__name__)

SOURCE = "langgraph"
"""The `source` of workflows started through LangGraph Server (the service never recovers
them: their checkpoints live in the server, not in the agent's database)."""

_context: WorkflowContext | None = None
_database: Database | None = None
_building = asyncio.Lock()


async def server_context() -> WorkflowContext:
    """The runtime context, built on first use and kept for the life of the process."""
    global _context, _database
    async with _building:
        if _context is None:
            # Files are read on a worker thread: the server refuses blocking calls in its loop.
            settings = await asyncio.to_thread(load_settings)
            agent_config = await asyncio.to_thread(load_agent_config, settings)
            database = await open_database(settings)  # migrates, as the service does at start
            config = agent_config.for_database(database.url)
            runner = OperationRunner(
                catalog=config.catalog,
                targets=config.targets,
                policy=config.commands,
                executors=default_executors(settings),
            )
            _database = database
            _context = WorkflowContext(
                planner=conversation_planner(settings, config),
                assessor=RiskAssessor(
                    policy=config.risk, catalog=config.catalog, resolver=config.targets
                ),
                approval_rules=config.approvals,
                catalog=config.catalog,
                runner=runner,
                approvals=ApprovalStore(database.pool),
                workflows=WorkflowStore(database.pool),
                ledger=ExecutionLedger(database.pool, owner=f"langgraph-{settings.replica_id}"),
                targets=config.targets,
            )
            log.info("LangGraph Server context ready", extra={"config": str(settings.config_dir)})
        return _context


async def make_graph(config: RunnableConfig) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph factory langgraph.json names: every node bound to the process's context."""
    context = await server_context()
    return build_graph(bind=lambda name, node: _bound(name, node, context)).compile()


def _bound(name: str, node: Node, context: WorkflowContext) -> Node:
    if name == "intake":

        async def intake(
            state: WorkflowState, config: RunnableConfig, runtime: Runtime[Any]
        ) -> dict[str, Any]:
            workflow_id = await _record_workflow(state, config, context)
            update = await nodes.intake(
                {**state, "workflow_id": workflow_id}, _with(runtime, context)
            )
            return {**update, "workflow_id": workflow_id}

        return intake

    async def run(state: WorkflowState, runtime: Runtime[Any]) -> dict[str, Any]:
        update: dict[str, Any] = await node(state, _with(runtime, context))
        if name == "request_approval":  # nobody else says so on this path
            await context.workflows.update(state["workflow_id"], status="awaiting_approval")
        return update

    return run


def _with(runtime: Runtime[Any], context: WorkflowContext) -> Runtime[WorkflowContext]:
    return dataclasses.replace(runtime, context=context)


async def _record_workflow(
    state: WorkflowState, config: RunnableConfig, context: WorkflowContext
) -> str:
    """The thread is the workflow: its row in the agent's tables, made once."""
    workflow_id = state.get("workflow_id") or str(config["configurable"]["thread_id"])
    try:
        await context.workflows.get(workflow_id)
        return workflow_id
    except NotFoundError:
        pass
    request = WorkRequest.model_validate({**state["request"], "source": SOURCE})
    await context.workflows.create(
        workflow_id=workflow_id,
        source=SOURCE,
        requester=request.requester,
        request=request.model_dump(mode="json"),
        request_id=request.request_id,
    )
    return workflow_id
