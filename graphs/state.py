"""The workflow's checkpointed state: plain JSON values, so any replica can read any thread."""

from __future__ import annotations

from typing import Any, TypedDict


class WorkflowState(TypedDict, total=False):
    workflow_id: str
    request: dict[str, Any]
    plan: dict[str, Any] | None
    planning_error: str | None
    planning_outcome: dict[str, Any] | None
    """A question back or a refusal (PlanOutcome), when planning stopped short of a plan."""
    assessment: dict[str, Any] | None
    auto_approved: bool
    round: int
    plan_authors: list[str]
    """Everyone who edited any round of the plan; none of them may approve a later round."""
    approval_id: str | None
    evidence: list[dict[str, Any]]
    """What the reads before the gate found, as the approver is shown it."""
    changes_ruled_out: bool
    """The reads before the gate make every change's condition fail: nobody is asked."""
    decision: dict[str, Any] | None
    claim: dict[str, Any] | None
    """How claiming the mutated targets' leases went: owned, merged (into `owner`) or wait."""
    fingerprint: dict[str, dict[str, Any]]
    """Per mutated target, the probe fields (the catalog's `drift`) as the approver saw them."""
    drift: dict[str, Any] | None
    """What changed between the last approval's pause and its decision, when anything did."""
    results: list[dict[str, Any]]
    """Each step's status and `ledger_key` (graphs/steps.py:in_state); its output is in the
    execution ledger and the workflow record, not in every checkpoint."""
    verification: list[dict[str, Any]]
    rollback: dict[str, Any] | None
    """Set once verification failed after a mutation: the inverse plan proposed, and why."""
    results_before_rollback: list[dict[str, Any]]
    status: str
    error: str | None
