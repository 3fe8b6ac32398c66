"""Workflows: starting them, driving their graph, resuming them after a decision or a crash."""
