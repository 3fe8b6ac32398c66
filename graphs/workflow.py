"""The graph factory: intake -> plan -> assess_risk -> claim_targets -> [investigate ->
request_approval -> gate] -> execute -> verify -> report. An approval's gate step reads the
targets again (graphs/drift.py): a drifted target goes back to investigate for a new round.
Reads that rule out every change go from investigate straight to execute; a leased target
merges the request into its owner or waits for it (graphs/ownership.py). An alert's recovery
whose alerts have all resolved ends at its claim, its wait or its approval request, asking
nobody (graphs/withdrawal.py). Built without a
checkpointer, so the service (AsyncPostgresSaver) and LangGraph Server (langgraph.json ->
graphs/server.py:make_graph) compile it their own way."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from langgraph.graph import END, START, StateGraph

from graphs import drift, evidence, nodes, ownership, rollback
from graphs.context import WorkflowContext
from graphs.state import WorkflowState
from graphs.withdrawal import withdrawn


def after_plan(state: WorkflowState) -> Literal["assess_risk", "report"]:
    return "report" if state.get("planning_error") else "assess_risk"


def after_assessment(state: WorkflowState) -> Literal["execute", "investigate"]:
    return "execute" if state.get("auto_approved") else "investigate"


def after_request(state: WorkflowState) -> Literal["gate", "report"]:
    """To the pause, unless the alerts that asked for it resolved first: then nobody is asked."""
    return "report" if withdrawn(state) else "gate"


def after_gate(
    state: WorkflowState,
) -> Literal["execute", "investigate", "apply_edit", "report"]:
    """Approved: on to execution, unless the targets drifted (a new round, or the end when the
    alert behind it resolved); edited: assess the edit; anything else ends the run."""
    outcome = (state.get("decision") or {}).get("outcome")
    if outcome in ("approved", "withdrawn") and state.get("drift"):
        return drift.after_drift(state)
    if outcome == "approved":
        return "execute"
    if outcome == "edited":
        return "apply_edit"
    return "report"


Node = Callable[..., Any]
Binder = Callable[[str, Node], Node]
Router = Callable[[WorkflowState], str]


def _in_loop(router: Router) -> Callable[[WorkflowState], Awaitable[str]]:
    """The router as a coroutine: LangGraph runs a plain function in a worker thread, a hop
    per step that costs more than the routing. `wraps` keeps its `Literal` return type, from
    which LangGraph learns the edges."""

    @functools.wraps(router)
    async def route(state: WorkflowState) -> str:
        return router(state)

    return route


def build_graph(bind: Binder | None = None) -> StateGraph[WorkflowState, Any]:
    """The graph; `bind` wraps each node (LangGraph Server binds them to a process-wide
    context, see graphs/server.py), and then the graph takes no runtime context."""
    graph: StateGraph[WorkflowState, Any] = (
        StateGraph(WorkflowState)
        if bind is not None
        else StateGraph(WorkflowState, context_schema=WorkflowContext)
    )
    for name, node in (
        ("intake", nodes.intake),
        ("plan", nodes.plan),
        ("assess_risk", nodes.assess_risk),
        ("claim_targets", ownership.claim_targets),
        ("wait", ownership.wait_for_target),
        ("investigate", evidence.investigate),
        ("request_approval", nodes.request_approval),
        ("gate", nodes.gate),
        ("apply_edit", nodes.apply_edit),
        ("execute", nodes.execute),
        ("verify", nodes.verify),
        ("propose_rollback", rollback.propose_rollback),
        ("report", nodes.report),
    ):
        graph.add_node(name, bind(name, node) if bind is not None else node)
    graph.add_edge(START, "intake")
    graph.add_edge("intake", "plan")
    graph.add_conditional_edges("plan", _in_loop(after_plan))
    graph.add_edge("assess_risk", "claim_targets")
    graph.add_conditional_edges("claim_targets", _in_loop(ownership.after_claim))
    graph.add_conditional_edges("wait", _in_loop(ownership.after_wait))
    graph.add_conditional_edges("investigate", _in_loop(evidence.after_investigation))
    graph.add_conditional_edges("request_approval", _in_loop(after_request))
    graph.add_conditional_edges("gate", _in_loop(after_gate))
    graph.add_edge("apply_edit", "assess_risk")
    graph.add_edge("execute", "verify")
    graph.add_conditional_edges("verify", _in_loop(rollback.after_verify))
    graph.add_conditional_edges("propose_rollback", _in_loop(rollback.after_proposal))
    graph.add_edge("report", END)
    return graph
