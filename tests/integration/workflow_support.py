"""What the graph and engine tests share: the workflow's real stores, policies, planner and
Postgres checkpointer on a throwaway database, with in-memory executors behind the real
OperationRunner; helpers to start, decide and read workflows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agent_orchestrator.runtime import conversation_planner
from graphs.context import Planner, WorkflowContext
from graphs.state import WorkflowState
from graphs.workflow import build_graph
from shared.lib.approvals.models import ApprovalRecord, Decision
from shared.lib.approvals.refusals import RefusalLog
from shared.lib.approvals.service import ApprovalService
from shared.lib.approvals.store import ApprovalStore
from shared.lib.config import AgentConfig, load_agent_config
from shared.lib.db.checkpointer import PooledPostgresSaver
from shared.lib.db.database import Database, open_database
from shared.lib.execution.ledger import ExecutionLedger
from shared.lib.execution.runner import OperationRunner
from shared.lib.executors.fake import FakeExecutor
from shared.lib.notifications.service import Notifier
from shared.lib.planning.models import Plan, PlannedOperation
from shared.lib.risk.assessor import RiskAssessor
from shared.lib.settings import Settings, load_settings
from shared.lib.workflows.engine import Graph, WorkflowEngine
from shared.lib.workflows.leases import TargetLeases
from shared.lib.workflows.locks import WorkflowLocks
from shared.lib.workflows.models import WorkRequest
from shared.lib.workflows.store import WorkflowEvent, WorkflowRecord, WorkflowStore
from tests.helpers import CONFIG_DIR, FIXTURES

APPROVER_ROLES = frozenset({"approver"})


@dataclass(frozen=True)
class Replica:
    """What one service process runs: the engine and the approval service around it."""

    engine: WorkflowEngine
    decisions: ApprovalService
    context: WorkflowContext

    async def start(self, request: WorkRequest) -> WorkflowRecord:
        return await self.engine.start(request)

    async def drain(self) -> None:
        await self.engine.drain()


@dataclass
class WorkflowWorld:
    """One database's worth of workflow machinery; build as many contexts and engines on it
    as a test needs replicas."""

    settings: Settings
    database: Database
    config: AgentConfig
    executors: dict[str, FakeExecutor]
    locks: list[WorkflowLocks] = field(default_factory=list)

    @property
    def approvals(self) -> ApprovalStore:
        return ApprovalStore(self.database.pool)

    @property
    def workflows(self) -> WorkflowStore:
        return WorkflowStore(self.database.pool)

    @property
    def docker(self) -> FakeExecutor:
        return self.executors["docker"]

    def context(self) -> WorkflowContext:
        config = self.config
        runner = OperationRunner(
            catalog=config.catalog,
            targets=config.targets,
            policy=config.commands,
            executors=self.executors,
        )
        return WorkflowContext(
            planner=conversation_planner(self.settings, config),
            assessor=RiskAssessor(
                policy=config.risk, catalog=config.catalog, resolver=config.targets
            ),
            approval_rules=config.approvals,
            catalog=config.catalog,
            runner=runner,
            approvals=self.approvals,
            workflows=self.workflows,
            ledger=ExecutionLedger(self.database.pool, owner="test"),
        )

    def graph(self) -> Graph:
        return build_graph().compile(checkpointer=PooledPostgresSaver(self.database.pool))

    async def engine(
        self,
        *,
        planning_slots: int | None = None,
        planner: Planner | None = None,
        leases: TargetLeases | None = None,
    ) -> Replica:
        """A replica: its own graph, context, lock connection, engine and approval service on
        the shared database; `planner` stands in for the configured one; with `leases`, one
        owner per target (as the service runs), else nothing is leased."""
        locks = WorkflowLocks(self.database.url)
        await locks.open()
        self.locks.append(locks)
        context = self.context()
        context.leases = leases
        if planner is not None:
            context.planner = planner
        notifier = Notifier.silent(approvals=self.approvals, workflows=self.workflows)
        engine = WorkflowEngine(
            graph=self.graph(),
            context=context,
            workflows=self.workflows,
            locks=locks,
            notifier=notifier,
            leases=leases,
            planning_slots=planning_slots,
        )
        context.on_status = engine.status_changed
        decisions = ApprovalService(
            store=self.approvals,
            workflows=self.workflows,
            engine=engine,
            notifier=notifier,
            refusals=RefusalLog(self.database.pool),
        )
        return Replica(engine=engine, decisions=decisions, context=context)

    async def new_workflow(self, request: WorkRequest) -> WorkflowState:
        """A workflow row and the graph input that starts its thread."""
        workflow_id = f"wf-test-{uuid.uuid4().hex[:12]}"
        await self.workflows.create(
            workflow_id=workflow_id,
            source=request.source,
            requester=request.requester,
            request=request.model_dump(mode="json"),
            request_id=None,
        )
        return {"workflow_id": workflow_id, "request": request.model_dump(mode="json")}

    async def decide(
        self,
        approval_id: uuid.UUID,
        decision: Decision,
        *,
        actor: str = "bob",
        reason: str | None = None,
        plan: Plan | None = None,
    ) -> ApprovalRecord:
        result = await self.approvals.decide(
            approval_id=approval_id,
            actor=actor,
            roles=APPROVER_ROLES,
            decision=decision,
            reason=reason,
            plan=plan,
        )
        return result.approval

    async def events(self, workflow_id: str) -> list[WorkflowEvent]:
        return await self.workflows.timeline(workflow_id)

    def calls(self, operation: str) -> list[str]:
        """Targets the docker fake ran `operation` on, in order."""
        return [c.target.name for c in self.docker.calls if c.operation == operation]


@asynccontextmanager
async def workflow_world(*, database_url: str, data_dir: Path) -> AsyncIterator[WorkflowWorld]:
    settings = load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=data_dir,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
    )
    database = await open_database(settings)
    world = WorkflowWorld(
        settings=settings,
        database=database,
        config=load_agent_config(settings, database_url=database.url),
        executors={kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")},
    )
    try:
        yield world
    finally:
        for locks in world.locks:
            await locks.close()
        await database.close()


def steps(*operations: tuple[str, str, str], requester: str = "alice") -> WorkRequest:
    """A structured request: (operation, environment, target) per step."""
    return WorkRequest(
        requester=requester,
        steps=[
            PlannedOperation(operation=op, environment=env, target=target)
            for op, env, target in operations
        ],
    )


def plan_of(*operations: tuple[str, str, str]) -> Plan:
    return Plan(
        steps=[
            PlannedOperation(operation=op, environment=env, target=target)
            for op, env, target in operations
        ]
    )


async def new_workflow(workflows: WorkflowStore, requester: str) -> str:
    """A workflow row of its own (no run): for tests of the stores around it."""
    workflow_id = f"wf-{uuid.uuid4().hex[:16]}"
    await workflows.create(
        workflow_id=workflow_id,
        source="api",
        requester=requester,
        request={"requester": requester},
        request_id=None,
    )
    return workflow_id
