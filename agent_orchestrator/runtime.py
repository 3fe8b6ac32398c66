"""Build everything with a lifetime (config, executors, graph, engine, sweeper) for one app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from agent_orchestrator.chat.service import ChatService
from agent_orchestrator.chat.store import ChatStore
from agent_orchestrator.workflows.engine import WorkflowEngine
from graphs.context import WorkflowContext
from graphs.workflow import build_graph
from shared.lib.alerts.strategies import RecoveryStrategies, load_recovery_strategies
from shared.lib.approvals.policy import ApprovalPolicy
from shared.lib.approvals.store import ApprovalStore
from shared.lib.catalog.loader import load_catalog
from shared.lib.catalog.models import Catalog
from shared.lib.commands.policy import CommandPolicy, load_command_policy
from shared.lib.db.checkpointer import PooledPostgresSaver
from shared.lib.db.database import Database
from shared.lib.execution.ledger import ExecutionLedger
from shared.lib.execution.protocol import Executor
from shared.lib.execution.runner import OperationRunner
from shared.lib.executors.docker import DockerExecutor
from shared.lib.executors.fake import FakeExecutor
from shared.lib.executors.http import HttpExecutor
from shared.lib.executors.ssh import SshExecutor
from shared.lib.notifications.config import load_notifications
from shared.lib.notifications.dispatcher import NotificationDispatcher
from shared.lib.notifications.models import NotificationsConfig
from shared.lib.notifications.service import Notifier
from shared.lib.planning.conversation import ConversationPlanner, OfflineConversationPlanner
from shared.lib.planning.llm import LlmPlanner
from shared.lib.planning.vocabulary import Vocabulary, load_vocabulary
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
    notifications: NotificationsConfig = field(default_factory=NotificationsConfig)
    recovery: RecoveryStrategies = field(default_factory=RecoveryStrategies)
    identity: SelfIdentity = field(default_factory=SelfIdentity)
    vocabulary: Vocabulary | None = None


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
    identity = self_identity(settings, database_url or settings.database_url)
    return AgentConfig(
        catalog=catalog,
        targets=load_targets(
            config_dir=config_dir, path=settings.environments_file, identity=identity
        ),
        commands=load_command_policy(config_dir=config_dir),
        risk=RiskPolicy.load(config_dir / "hitl" / "risk_policy.yml", catalog=catalog),
        approvals=ApprovalPolicy.load(config_dir / "hitl" / "approval_policy.yml"),
        principals=PrincipalDirectory.load(settings.principals_path),
        notifications=load_notifications(
            settings.notifications_path, required=settings.notifications_file is not None
        ),
        recovery=load_recovery_strategies(config_dir=config_dir, catalog=catalog),
        identity=identity,
        vocabulary=load_vocabulary(config_dir=config_dir, catalog=catalog),
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
    notifications: NotificationDispatcher | None = None
    chat: ChatService | None = None

    async def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        await self.engine.drain()
        if self.notifications is not None:
            await self.notifications.aclose()
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
    planner = conversation_planner(settings, config)
    context = WorkflowContext(
        planner=planner,
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
    graph = build_graph().compile(checkpointer=PooledPostgresSaver(conn=database.pool))
    notifications = NotificationDispatcher(config.notifications)
    await notifications.start()
    notifier = Notifier(
        dispatcher=notifications,
        approvals=approvals,
        workflows=workflows,
        public_url=settings.public_url,
    )
    engine = WorkflowEngine(
        graph=graph,
        context=context,
        approvals=approvals,
        workflows=workflows,
        locks=locks,
        notifier=notifier,
    )
    runtime = AgentRuntime(config, engine, ledger, locks, executors, notifications=notifications)
    runtime.chat = ChatService(
        store=ChatStore(database.pool),
        engine=engine,
        planner=planner,
        runner=runner,
        assessor=context.assessor,
        history=ledger,
        approvals=approvals,
        catalog=config.catalog,
    )
    runtime.sweeper = asyncio.create_task(_sweep(engine, settings.sweep_interval_s))
    return runtime


def conversation_planner(settings: Settings, config: AgentConfig) -> ConversationPlanner:
    """The LLM planner when an endpoint is configured, else the offline one (its fallback)."""
    offline = OfflineConversationPlanner(
        catalog=config.catalog,
        resolver=config.targets,
        vocabulary=config.vocabulary,
        commands=config.commands,
    )
    if not settings.llm_configured:
        return offline
    log.info("planning with an LLM", extra={"model": settings.llm_model})
    return LlmPlanner.from_settings(
        settings, catalog=config.catalog, resolver=config.targets, fallback=offline
    )


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
