"""What the workflow's nodes work with, handed in per run as LangGraph runtime context.

Nothing here is checkpointed: the context is rebuilt by whichever process resumes a thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.lib.approvals.policy import ApprovalPolicy
from shared.lib.approvals.store import ApprovalStore
from shared.lib.catalog.models import Catalog
from shared.lib.execution.ledger import ExecutionLedger
from shared.lib.execution.models import ExecutionResult
from shared.lib.planning.models import Plan
from shared.lib.risk.models import RiskAssessment
from shared.lib.targets import TargetResolver
from shared.lib.workflows.leases import TargetLeases
from shared.lib.workflows.models import WorkRequest
from shared.lib.workflows.store import WorkflowRecord, WorkflowStore


class Planner(Protocol):
    # Async: an LLM planner waits on the network; the offline one is wrapped to match.
    async def plan(self, request: WorkRequest) -> Plan: ...


class MutationHistory(Protocol):
    async def recent_mutations(
        self, *, target: str, environment: str | None, window_s: int
    ) -> int: ...


class Assessor(Protocol):
    async def assess(self, plan: Plan, *, history: MutationHistory) -> RiskAssessment: ...


class Runner(Protocol):
    async def run(
        self, *, operation: str, target: str, environment: str | None, params: dict[str, Any]
    ) -> ExecutionResult: ...


class StatusHook(Protocol):
    """Told of a workflow's new status; `record` is its row when the teller has it at hand
    (the report node's last update returns it), so nobody reads it again."""

    async def __call__(
        self, workflow_id: str, status: str, record: WorkflowRecord | None = None
    ) -> None: ...


async def _no_notification(
    workflow_id: str, status: str, record: WorkflowRecord | None = None
) -> None:
    return None


async def _always_firing(fingerprint: str) -> bool:
    return True


async def _never_cleared(workflow_id: str, *, alert_id: int) -> bool:
    return False


class AlertsCleared(Protocol):
    """Whether every alert a workflow answers (its own, `alert_id`, and those linked or
    merged into it) has resolved."""

    async def __call__(self, workflow_id: str, *, alert_id: int) -> bool: ...


@dataclass
class WorkflowContext:
    planner: Planner
    assessor: Assessor
    approval_rules: ApprovalPolicy
    catalog: Catalog
    runner: Runner
    approvals: ApprovalStore
    workflows: WorkflowStore
    ledger: ExecutionLedger
    on_status: StatusHook = field(default=_no_notification)
    """Told of every status change (wakes waiting API calls, sends notifications)."""
    leases: TargetLeases | None = None
    """One owner per target; without it (a bare graph in tests) nothing is leased."""
    targets: TargetResolver | None = None
    """The configured targets' own settings (a service's `verify_url`); without it (a bare
    graph in tests) verification checks only the state each operation promises."""
    alert_firing: Callable[[str], Awaitable[bool]] = field(default=_always_firing)
    """Whether the alert with this fingerprint still fires (a drifted run it started ends)."""
    alerts_cleared: AlertsCleared = field(default=_never_cleared)
    """Whether the alerts a workflow answers have all resolved: read at its gates, so an
    alert's recovery asks nobody and changes nothing once they have (graphs/withdrawal.py)."""
