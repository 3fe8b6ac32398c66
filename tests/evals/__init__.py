"""Judgment evaluations: operator requests and alerts with the outcome each must have, run
against the offline planner and the LLM planner (scripted replies through ChatOpenAI)."""
