"""The graph factory: intake -> plan -> assess_risk -> [investigate -> request_approval -> gate]
-> execute -> verify -> report. Built without a checkpointer, so the service
(AsyncPostgresSaver) and LangGraph Server (langgraph.json) can each compile it their own way."""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph

from graphs import evidence, nodes
from graphs.context import WorkflowContext
from graphs.state import WorkflowState


def after_plan(state: WorkflowState) -> Literal["assess_risk", "report"]:
    return "report" if state.get("planning_error") else "assess_risk"


def after_assessment(state: WorkflowState) -> Literal["execute", "investigate"]:
    return "execute" if state.get("auto_approved") else "investigate"


def after_gate(state: WorkflowState) -> Literal["execute", "apply_edit", "report"]:
    outcome = (state.get("decision") or {}).get("outcome")
    if outcome == "approved":
        return "execute"
    if outcome == "edited":
        return "apply_edit"
    return "report"


def build_graph() -> StateGraph[WorkflowState, WorkflowContext]:
    graph = StateGraph(WorkflowState, context_schema=WorkflowContext)
    graph.add_node("intake", nodes.intake)
    graph.add_node("plan", nodes.plan)
    graph.add_node("assess_risk", nodes.assess_risk)
    graph.add_node("investigate", evidence.investigate)
    graph.add_node("request_approval", nodes.request_approval)
    graph.add_node("gate", nodes.gate)
    graph.add_node("apply_edit", nodes.apply_edit)
    graph.add_node("execute", nodes.execute)
    graph.add_node("verify", nodes.verify)
    graph.add_node("report", nodes.report)
    graph.add_edge(START, "intake")
    graph.add_edge("intake", "plan")
    graph.add_conditional_edges("plan", after_plan)
    graph.add_conditional_edges("assess_risk", after_assessment)
    graph.add_edge("investigate", "request_approval")
    graph.add_edge("request_approval", "gate")
    graph.add_conditional_edges("gate", after_gate)
    graph.add_edge("apply_edit", "assess_risk")
    graph.add_edge("execute", "verify")
    graph.add_edge("verify", "report")
    graph.add_edge("report", END)
    return graph


# LangGraph Server / Studio entry point (see langgraph.json): compiled without a checkpointer;
# the server supplies its own persistence. The runtime context must be provided per run.
graph = build_graph().compile()
