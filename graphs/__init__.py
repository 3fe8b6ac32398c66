"""The approval-gated workflow as a LangGraph graph: state, nodes and the graph factory."""
