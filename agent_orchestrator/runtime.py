"""Build everything with a lifetime (config, executors, graph, engine, sweeper) for one app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from agent_orchestrator.workflows.engine import WorkflowEngine
from graphs.context import WorkflowContext
from graphs.workflow import build_graph
from shared.lib.approvals.policy import ApprovalPolicy
from shared.lib.approvals.store import ApprovalStore
from shared.lib.catalog.loader import load_catalog
from shared.lib.catalog.models import Catalog
from shared.lib.commands.policy import CommandPolicy, load_command_policy
from shared.lib.db.database import Database
from shared.lib.execution.ledger import ExecutionLedger
from shared.lib.execution.protocol import Executor
from shared.lib.execution.runner import OperationRunner
from shared.lib.executors.docker import DockerExecutor
from shared.lib.executors.fake import FakeExecutor
from shared.lib.executors.http import HttpExecutor
from shared.lib.executors.ssh import SshExecutor
from shared.lib.planning.offline import OfflinePlanner
from shared.lib.principals import PrincipalDirectory
from shared.lib.risk.assessor import RiskAssessor
from shared.lib.risk.policy import RiskPolicy
from shared.lib.settings import Settings
from shared.lib.targets.models import SelfIdentity
from shared.lib.targets.resolver import TargetResolver, load_targets
from shared.lib.workflows.locks import WorkflowLocks
from shared.lib.workflows.store import WorkflowStore

log = logging.getLogger(__name__)

# Recovery looks for stalled threads less often than expiry runs; it reads more.
RECOVERY_EVERY_N_SWEEPS = 6


@dataclass(frozen=True)
class AgentConfig:
    """Every declarative file, validated; a bad one stops start-up naming file, line, field."""

    catalog: Catalog
    targets: TargetResolver
    commands: CommandPolicy
    risk: RiskPolicy
    approvals: ApprovalPolicy
    principals: PrincipalDirectory


def self_identity(settings: Settings, database_url: str | None) -> SelfIdentity:
    containers = {name.strip() for name in settings.self_containers.split(",") if name.strip()}
    if os.path.exists("/.dockerenv"):
        containers.add(socket.gethostname())  # inside a container, the hostname is its id
    hosts = {name.strip() for name in settings.self_hosts.split(",") if name.strip()}
    hosts |= {socket.gethostname(), socket.getfqdn()}
    endpoints = set()
    if database_url:
        parts = urlsplit(database_url)
        if parts.hostname:
            endpoints.add(f"{parts.hostname}:{parts.port or 5432}")
    return SelfIdentity(
        container_names=frozenset(containers),
        hostnames=frozenset(hosts),
        database_endpoints=frozenset(endpoints),
    )


def load_agent_config(settings: Settings, *, database_url: str | None = None) -> AgentConfig:
    config_dir = settings.config_dir
    catalog = load_catalog(config_dir=config_dir)
    return AgentConfig(
        catalog=catalog,
        targets=load_targets(
            config_dir=config_dir,
            path=settings.environments_file,
            identity=self_identity(settings, database_url or settings.database_url),
        ),
        commands=load_command_policy(config_dir=config_dir),
        risk=RiskPolicy.load(config_dir / "hitl" / "risk_policy.yml", catalog=catalog),
        approvals=ApprovalPolicy.load(config_dir / "hitl" / "approval_policy.yml"),
        principals=PrincipalDirectory.load(settings.principals_path),
    )


def default_executors(settings: Settings) -> dict[str, Executor]:
    if settings.dry_run:
        log.warning("dry run: operations go to in-memory executors; nothing real is touched")
        return {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    return {"docker": DockerExecutor(), "ssh": SshExecutor(), "http": HttpExecutor()}


@dataclass
class AgentRuntime:
    config: AgentConfig
    engine: WorkflowEngine
    ledger: ExecutionLedger
    locks: WorkflowLocks
    executors: Mapping[str, Executor]
    sweeper: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        await self.engine.drain()
        await self.locks.close()
        for executor in self.executors.values():
            await executor.aclose()


async def start_runtime(
    settings: Settings, database: Database, *, executors: Mapping[str, Executor] | None = None
) -> AgentRuntime:
    config = load_agent_config(settings, database_url=database.url)
    executors = dict(executors) if executors is not None else default_executors(settings)
    runner = OperationRunner(
        catalog=config.catalog,
        targets=config.targets,
        policy=config.commands,
        executors=executors,
    )
    approvals, workflows = ApprovalStore(database.pool), WorkflowStore(database.pool)
    ledger = ExecutionLedger(database.pool, owner=settings.replica_id)
    context = WorkflowContext(
        planner=OfflinePlanner(catalog=config.catalog, resolver=config.targets),
        assessor=RiskAssessor(policy=config.risk, catalog=config.catalog, resolver=config.targets),
        approval_rules=config.approvals,
        catalog=config.catalog,
        runner=runner,
        approvals=approvals,
        workflows=workflows,
        ledger=ledger,
    )
    locks = WorkflowLocks(database.url)
    await locks.open()
    graph = build_graph().compile(checkpointer=AsyncPostgresSaver(conn=database.pool))
    engine = WorkflowEngine(
        graph=graph, context=context, approvals=approvals, workflows=workflows, locks=locks
    )
    runtime = AgentRuntime(config, engine, ledger, locks, executors)
    runtime.sweeper = asyncio.create_task(_sweep(engine, settings.sweep_interval_s))
    return runtime


async def _sweep(engine: WorkflowEngine, interval_s: float) -> None:
    """Expire approvals past their TTL; now and then pick up threads whose driver died."""
    sweeps = 0
    while True:
        try:
            await engine.expire_due()
            if sweeps % RECOVERY_EVERY_N_SWEEPS == 0:
                await engine.recover()
        except Exception:  # a failed sweep is retried next interval; the service stays up
            log.exception("sweep failed")
        sweeps += 1
        await asyncio.sleep(interval_s)
