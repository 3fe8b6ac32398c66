"""Build everything with a lifetime (executors, stores, graph, engine, services, sweeper) once,
in the app's lifespan; routes reach them through `deps.py`, never by building them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from graphs.context import WorkflowContext
from graphs.workflow import build_graph
from shared.lib.alerts.service import AlertService
from shared.lib.alerts.store import AlertStore
from shared.lib.alerts.triage import AlertTriage
from shared.lib.approvals.service import ApprovalService
from shared.lib.approvals.store import ApprovalStore
from shared.lib.chat.service import ChatService
from shared.lib.chat.store import ChatStore
from shared.lib.config import AgentConfig
from shared.lib.db.checkpointer import PooledPostgresSaver
from shared.lib.db.database import Database
from shared.lib.execution.ledger import ExecutionLedger
from shared.lib.execution.protocol import Executor
from shared.lib.execution.runner import OperationRunner
from shared.lib.executors.docker import DockerExecutor
from shared.lib.executors.fake import FakeExecutor
from shared.lib.executors.http import HttpExecutor
from shared.lib.executors.ssh import SshExecutor
from shared.lib.inbox.store import InboxStore
from shared.lib.notifications.dispatcher import NotificationDispatcher
from shared.lib.notifications.service import Notifier
from shared.lib.planning.conversation import ConversationPlanner, OfflineConversationPlanner
from shared.lib.planning.llm import LlmPlanner
from shared.lib.risk.assessor import RiskAssessor
from shared.lib.settings import Settings
from shared.lib.slack.service import SlackInteractivity
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.locks import WorkflowLocks
from shared.lib.workflows.store import WorkflowStore

log = logging.getLogger(__name__)

# Recovery looks for stalled threads less often than expiry runs; it reads more.
RECOVERY_EVERY_N_SWEEPS = 6


def default_executors(settings: Settings) -> dict[str, Executor]:
    if settings.dry_run:
        log.warning("dry run: operations go to in-memory executors; nothing real is touched")
        return {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    return {"docker": DockerExecutor(), "ssh": SshExecutor(), "http": HttpExecutor()}


@dataclass
class AgentRuntime:
    """One of each: what the routes use and what shuts down with the app."""

    config: AgentConfig
    approvals: ApprovalStore
    workflows: WorkflowStore
    alert_records: AlertStore
    ledger: ExecutionLedger
    engine: WorkflowEngine
    decisions: ApprovalService
    chat: ChatService
    alerts: AlertService
    locks: WorkflowLocks
    executors: Mapping[str, Executor]
    notifications: NotificationDispatcher
    inbox: InboxStore
    slack: SlackInteractivity
    sweeper: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        await self.engine.drain()
        await self.notifications.aclose()
        await self.locks.close()
        for executor in self.executors.values():
            await executor.aclose()


async def start_runtime(
    settings: Settings,
    database: Database,
    config: AgentConfig,
    *,
    executors: Mapping[str, Executor] | None = None,
) -> AgentRuntime:
    config = config.for_database(database.url)
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
    assessor = RiskAssessor(policy=config.risk, catalog=config.catalog, resolver=config.targets)
    context = WorkflowContext(
        planner=planner,
        assessor=assessor,
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
        graph=graph, context=context, workflows=workflows, locks=locks, notifier=notifier
    )
    context.on_status = engine.status_changed
    decisions = ApprovalService(
        store=approvals, workflows=workflows, engine=engine, notifier=notifier
    )
    alert_records = AlertStore(database.pool)
    runtime = AgentRuntime(
        config=config,
        approvals=approvals,
        workflows=workflows,
        alert_records=alert_records,
        ledger=ledger,
        engine=engine,
        decisions=decisions,
        chat=ChatService(
            store=ChatStore(database.pool),
            engine=engine,
            planner=planner,
            runner=runner,
            assessor=assessor,
            history=ledger,
            approvals=approvals,
            decisions=decisions,
            catalog=config.catalog,
        ),
        alerts=AlertService(
            store=alert_records,
            workflows=workflows,
            engine=engine,
            approvals=decisions,
            triage=AlertTriage(
                strategies=config.recovery,
                catalog=config.catalog,
                resolver=config.targets,
                identity=config.identity,
            ),
        ),
        locks=locks,
        executors=executors,
        notifications=notifications,
        inbox=InboxStore(database.pool),
        slack=slack_interactivity(settings, config, decisions, approvals),
    )
    runtime.sweeper = asyncio.create_task(_sweep(runtime, settings))
    return runtime


def slack_interactivity(
    settings: Settings, config: AgentConfig, decisions: ApprovalService, approvals: ApprovalStore
) -> SlackInteractivity:
    secret, token = settings.slack_signing_secret, settings.slack_bot_token
    return SlackInteractivity(
        signing_secret=secret.get_secret_value() if secret else None,
        bot_token=token.get_secret_value() if token else None,
        api_url=settings.slack_api_url,
        public_url=settings.public_url,
        principals=config.principals,
        decisions=decisions,
        approvals=approvals,
    )


def conversation_planner(settings: Settings, config: AgentConfig) -> ConversationPlanner:
    """The LLM planner when an endpoint is configured, else the offline one (its fallback)."""
    offline = OfflineConversationPlanner(catalog=config.catalog, resolver=config.targets)
    if not settings.llm_configured:
        return offline
    log.info("planning with an LLM", extra={"model": settings.llm_model})
    return LlmPlanner.from_settings(
        settings, catalog=config.catalog, resolver=config.targets, fallback=offline
    )


async def _sweep(runtime: AgentRuntime, settings: Settings) -> None:
    """Expire approvals past their TTL; now and then pick up threads whose driver died."""
    sweeps = 0
    while True:
        try:
            await runtime.decisions.expire_due()
            await runtime.decisions.count_pending()
            if sweeps % RECOVERY_EVERY_N_SWEEPS == 0:
                grace_s = settings.recovery_grace_s
                await runtime.decisions.recover_decided(grace_s=grace_s)
                await runtime.engine.recover_stalled(grace_s=grace_s)
        except Exception:  # a failed sweep is retried next interval; the service stays up
            log.exception("sweep failed")
        sweeps += 1
        await asyncio.sleep(settings.sweep_interval_s)
