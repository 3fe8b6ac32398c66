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
from shared.lib.alerts.inbound.deliveries import DeliveryLog
from shared.lib.alerts.inbound.service import InboundService
from shared.lib.alerts.inbound.throttle import WebhookThrottle
from shared.lib.alerts.queue import AlertQueue
from shared.lib.alerts.service import AlertService
from shared.lib.alerts.store import AlertStore
from shared.lib.alerts.storm import AlertStorm
from shared.lib.alerts.triage import AlertTriage
from shared.lib.approvals.refusals import RefusalLog
from shared.lib.approvals.service import ApprovalService
from shared.lib.approvals.store import ApprovalStore
from shared.lib.approvals.wakeups import SettledListener
from shared.lib.chat.service import ChatService
from shared.lib.chat.store import ChatStore
from shared.lib.config import AgentConfig
from shared.lib.db.checkpointer import PooledPostgresSaver
from shared.lib.db.database import Database
from shared.lib.execution.ledger import ExecutionLedger
from shared.lib.execution.protocol import Executor
from shared.lib.execution.runner import OperationRunner
from shared.lib.executors.defaults import default_executors
from shared.lib.executors.ssh import SshExecutor
from shared.lib.inbox.store import InboxStore
from shared.lib.notifications.dispatcher import NotificationDispatcher
from shared.lib.notifications.service import Notifier
from shared.lib.planning.factory import conversation_planner
from shared.lib.risk.assessor import RiskAssessor
from shared.lib.settings import Settings
from shared.lib.slack.service import SlackInteractivity
from shared.lib.status.models import SweepRecord
from shared.lib.status.service import StatusService
from shared.lib.trackers.build import build_tracker
from shared.lib.trackers.service import TrackerService
from shared.lib.trackers.store import TrackerStore
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.leases import TargetLeases
from shared.lib.workflows.locks import WorkflowLocks
from shared.lib.workflows.store import WorkflowRecord, WorkflowStore

log = logging.getLogger(__name__)

# Recovery looks for stalled threads less often than expiry runs; it reads more.
RECOVERY_EVERY_N_SWEEPS = 6


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
    refusals: RefusalLog
    chat: ChatService
    alerts: AlertService
    locks: WorkflowLocks
    executors: Mapping[str, Executor]
    notifications: NotificationDispatcher
    inbound: InboundService
    status: StatusService
    sweeps: SweepRecord
    inbox: InboxStore
    slack: SlackInteractivity
    deliveries: DeliveryLog
    tracker_outbox: TrackerStore
    trackers: TrackerService | None = None
    sweeper: asyncio.Task[None] | None = None
    settled: SettledListener | None = None

    async def close(self) -> None:
        if self.settled is not None:
            await self.settled.close()
        if self.sweeper is not None:
            self.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.sweeper
        await self.engine.drain()
        await self.notifications.aclose()
        if self.trackers is not None:
            await self.trackers.aclose()
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
    planner = conversation_planner(settings, config, reader=runner)
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
        leases=TargetLeases(database.pool),
        targets=config.targets,
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
        workflows=workflows,
        locks=locks,
        notifier=notifier,
        leases=context.leases,
        planning_slots=settings.planning_slots,
    )
    trackers = _tracker_service(settings, database, config, approvals, workflows)

    async def on_status(
        workflow_id: str, status: str, record: WorkflowRecord | None = None
    ) -> None:
        await engine.status_changed(workflow_id, status, record)
        try:  # an investigation escalates
            await alerts.workflow_finished(workflow_id, status, record)
        except Exception:  # the workflow's own outcome stands; the service log says why
            log.exception("escalating an investigation failed", extra={"workflow": workflow_id})
        if trackers is not None:
            trackers.workflow_status(workflow_id, status)  # queued; never waits on the tracker

    context.on_status = on_status
    refusals = RefusalLog(database.pool)
    decisions = ApprovalService(
        store=approvals,
        workflows=workflows,
        engine=engine,
        notifier=notifier,
        refusals=refusals,
    )
    alert_records = AlertStore(database.pool)
    context.alert_firing = alert_records.is_firing
    context.alerts_cleared = alert_records.all_resolved
    triage = AlertTriage(
        strategies=config.recovery,
        catalog=config.catalog,
        resolver=config.targets,
        identity=config.identity,
    )
    storm = AlertStorm(
        queue=AlertQueue(database.pool),
        store=alert_records,
        triage=triage,
        engine=engine,
        catalog=config.catalog,
    )
    alerts = AlertService(
        storm=storm,
        store=alert_records,
        workflows=workflows,
        engine=engine,
        approvals=decisions,
        triage=triage,
        incidents=trackers,
    )
    sweeps = SweepRecord()
    deliveries = DeliveryLog(database.pool)
    ssh = executors.get("ssh")
    status = StatusService(
        settings=settings,
        pool=database.pool,
        migrations=database.migrations,
        targets=config.targets,
        notifications=notifications,
        sweeps=sweeps,
        approvals=approvals,
        workflows=workflows,
        ssh_probe=ssh.probe if isinstance(ssh, SshExecutor) else None,
    )
    runtime = AgentRuntime(
        config=config,
        approvals=approvals,
        workflows=workflows,
        alert_records=alert_records,
        ledger=ledger,
        engine=engine,
        decisions=decisions,
        refusals=refusals,
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
        alerts=alerts,
        locks=locks,
        executors=executors,
        notifications=notifications,
        inbound=InboundService(
            settings=settings,
            alerts=alerts,
            records=alert_records,
            deliveries=deliveries,
            throttle=WebhookThrottle(
                per_source=settings.webhook_rate_limit,
                per_principal=settings.webhook_principal_rate_limit,
            ),
            resolver=config.targets,
        ),
        trackers=trackers,
        status=status,
        sweeps=sweeps,
        inbox=InboxStore(database.pool),
        slack=slack_interactivity(settings, config, decisions, approvals),
        deliveries=deliveries,
        tracker_outbox=TrackerStore(database.pool),
    )
    if trackers is not None:
        await trackers.start()
    runtime.sweeper = asyncio.create_task(_sweep(runtime, settings))
    # Decisions taken by other replicas resume here at once if their decider could not.
    runtime.settled = SettledListener(database.url, decisions.resume_decided)
    runtime.settled.start()
    return runtime


def _tracker_service(
    settings: Settings,
    database: Database,
    config: AgentConfig,
    approvals: ApprovalStore,
    workflows: WorkflowStore,
) -> TrackerService | None:
    tracker = build_tracker(config.trackers)
    if tracker is None:
        return None
    log.info("incidents go to a tracker", extra={"tracker": tracker.name})
    return TrackerService(
        tracker=tracker,
        store=TrackerStore(database.pool),
        workflows=workflows,
        approvals=approvals,
        delivery=config.trackers.delivery,
        public_url=settings.public_url,
    )


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


async def sweep_once(runtime: AgentRuntime, settings: Settings, *, recover: bool) -> None:
    """One pass: expire approvals past their TTL, refresh the pending gauge and, with
    `recover`, resume settled approvals and stalled runs, released targets and queued alerts."""
    await runtime.decisions.expire_due()
    await runtime.decisions.count_pending()
    if recover:
        grace_s = settings.recovery_grace_s
        await runtime.decisions.recover_decided(grace_s=grace_s)
        await runtime.engine.recover_stalled(grace_s=grace_s)
        await runtime.engine.resume_waiting()
        await runtime.alerts.recover_queued(grace_s=grace_s)


async def _sweep(runtime: AgentRuntime, settings: Settings) -> None:
    """Expire approvals past their TTL; now and then pick up threads whose driver died."""
    sweeps = 0
    while True:
        runtime.sweeps.started()
        error: str | None = None
        try:
            await sweep_once(runtime, settings, recover=sweeps % RECOVERY_EVERY_N_SWEEPS == 0)
        except Exception as failure:  # retried next interval; the service stays up
            log.exception("sweep failed")
            error = f"{type(failure).__name__}: {failure}"
        runtime.sweeps.finished(error)
        sweeps += 1
        await asyncio.sleep(settings.sweep_interval_s)


__all__ = [
    "AgentRuntime",
    "conversation_planner",
    "default_executors",
    "start_runtime",
    "sweep_once",
]
