"""Every dependency a route may ask for, as typed aliases; routes never build clients.

Everything here was built once in the app's lifespan (`runtime.py`) and hangs off `app.state`.
The dependencies are coroutines: FastAPI runs a plain function dependency in a worker thread,
a hop per dependency and request that costs more than reading an attribute.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shared.lib.alerts.inbound.deliveries import DeliveryLog
from shared.lib.alerts.inbound.service import InboundService
from shared.lib.alerts.service import AlertService
from shared.lib.alerts.store import AlertStore
from shared.lib.approvals.refusals import RefusalLog
from shared.lib.approvals.service import ApprovalService
from shared.lib.approvals.store import ApprovalStore
from shared.lib.catalog.models import Catalog as OperationCatalog
from shared.lib.chat.service import ChatService
from shared.lib.config import AgentConfig
from shared.lib.db.database import Database
from shared.lib.db.pool import Pool as PgPool
from shared.lib.execution.ledger import ExecutionLedger
from shared.lib.inbox.store import InboxStore
from shared.lib.principals import MISSING_KEY, UNKNOWN_KEY, Principal, presented_key
from shared.lib.settings import Settings as AgentSettings
from shared.lib.slack.service import SlackInteractivity
from shared.lib.status.service import StatusService
from shared.lib.trackers.store import TrackerStore
from shared.lib.workflows.engine import WorkflowEngine
from shared.lib.workflows.store import WorkflowStore


async def get_settings(request: Request) -> AgentSettings:
    settings: AgentSettings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_pool(request: Request) -> PgPool:
    database: Database = request.app.state.database
    return database.pool


def config_of(request: Request) -> AgentConfig:
    config: AgentConfig = request.app.state.agent_config
    return config


async def get_config(request: Request) -> AgentConfig:
    return config_of(request)


async def get_engine(request: Request) -> WorkflowEngine:
    engine: WorkflowEngine = request.app.state.engine
    return engine


async def get_decisions(request: Request) -> ApprovalService:
    decisions: ApprovalService = request.app.state.decisions
    return decisions


async def get_refusals(request: Request) -> RefusalLog:
    refusals: RefusalLog = request.app.state.refusals
    return refusals


async def get_approvals(request: Request) -> ApprovalStore:
    approvals: ApprovalStore = request.app.state.approvals
    return approvals


async def get_workflows(request: Request) -> WorkflowStore:
    workflows: WorkflowStore = request.app.state.workflows
    return workflows


async def get_ledger(request: Request) -> ExecutionLedger:
    ledger: ExecutionLedger = request.app.state.ledger
    return ledger


async def get_alert_store(request: Request) -> AlertStore:
    alert_records: AlertStore = request.app.state.alert_records
    return alert_records


async def get_alerts(request: Request) -> AlertService:
    alerts: AlertService = request.app.state.alerts
    return alerts


async def get_inbound(request: Request) -> InboundService:
    inbound: InboundService = request.app.state.inbound
    return inbound


async def get_chat(request: Request) -> ChatService:
    chat: ChatService = request.app.state.chat
    return chat


async def get_deliveries(request: Request) -> DeliveryLog:
    deliveries: DeliveryLog = request.app.state.deliveries
    return deliveries


async def get_tracker_outbox(request: Request) -> TrackerStore:
    outbox: TrackerStore = request.app.state.tracker_outbox
    return outbox


async def get_inbox(request: Request) -> InboxStore:
    inbox: InboxStore = request.app.state.inbox
    return inbox


async def get_slack(request: Request) -> SlackInteractivity:
    slack: SlackInteractivity = request.app.state.slack
    return slack


async def get_status(request: Request) -> StatusService:
    status_service: StatusService = request.app.state.status
    return status_service


_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    """The principal behind the presented API key. The request gate (system/gate.py) checked
    the key already, before the body was read; the security schemes describe it in OpenAPI."""
    key = presented_key(request.headers)
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=MISSING_KEY, headers={"WWW-Authenticate": "Bearer"}
        )
    principal = config_of(request).principals.authenticate(key)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=UNKNOWN_KEY, headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.principal = principal.name
    return principal


async def get_catalog(request: Request) -> OperationCatalog:
    return config_of(request).catalog


Settings = Annotated[AgentSettings, Depends(get_settings)]
Db = Annotated[Database, Depends(get_database)]
Pool = Annotated[PgPool, Depends(get_pool)]
Config = Annotated[AgentConfig, Depends(get_config)]
Engine = Annotated[WorkflowEngine, Depends(get_engine)]
Decisions = Annotated[ApprovalService, Depends(get_decisions)]
Approvals = Annotated[ApprovalStore, Depends(get_approvals)]
Refusals = Annotated[RefusalLog, Depends(get_refusals)]
Workflows = Annotated[WorkflowStore, Depends(get_workflows)]
Ledger = Annotated[ExecutionLedger, Depends(get_ledger)]
Alerts = Annotated[AlertService, Depends(get_alerts)]
AlertRecords = Annotated[AlertStore, Depends(get_alert_store)]
Inbound = Annotated[InboundService, Depends(get_inbound)]
CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
Chat = Annotated[ChatService, Depends(get_chat)]
Catalog = Annotated[OperationCatalog, Depends(get_catalog)]
Status = Annotated[StatusService, Depends(get_status)]
Inbox = Annotated[InboxStore, Depends(get_inbox)]
Deliveries = Annotated[DeliveryLog, Depends(get_deliveries)]
TrackerOutbox = Annotated[TrackerStore, Depends(get_tracker_outbox)]
Slack = Annotated[SlackInteractivity, Depends(get_slack)]
