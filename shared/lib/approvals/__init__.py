"""Approval gates: who must approve which risk tier, and the decisions they make."""
