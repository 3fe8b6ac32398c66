"""Every dependency a route may ask for, as typed aliases; routes never build clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agent_orchestrator.alerts.service import AlertService
from agent_orchestrator.auth import authenticate
from agent_orchestrator.chat.service import ChatService
from agent_orchestrator.runtime import AgentConfig
from agent_orchestrator.workflows.engine import WorkflowEngine
from shared.lib.alerts import AlertStore, AlertTriage
from shared.lib.approvals.store import ApprovalStore
from shared.lib.catalog import Catalog as OperationCatalog
from shared.lib.db.database import Database
from shared.lib.db.pool import Pool as PgPool
from shared.lib.execution.ledger import ExecutionLedger
from shared.lib.principals import Principal
from shared.lib.settings import Settings as AgentSettings
from shared.lib.workflows.store import WorkflowStore


def get_settings(request: Request) -> AgentSettings:
    settings: AgentSettings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_pool(request: Request) -> PgPool:
    return get_database(request).pool


def get_engine(request: Request) -> WorkflowEngine:
    engine: WorkflowEngine = request.app.state.engine
    return engine


def get_approvals(request: Request) -> ApprovalStore:
    return ApprovalStore(get_pool(request))


def get_workflows(request: Request) -> WorkflowStore:
    return WorkflowStore(get_pool(request))


def get_ledger(request: Request) -> ExecutionLedger:
    ledger: ExecutionLedger = request.app.state.ledger
    return ledger


def get_alert_store(request: Request) -> AlertStore:
    return AlertStore(get_pool(request))


def get_alerts(request: Request) -> AlertService:
    config: AgentConfig = request.app.state.agent_config
    triage = AlertTriage(
        strategies=config.recovery,
        catalog=config.catalog,
        resolver=config.targets,
        identity=config.identity,
    )
    return AlertService(
        store=get_alert_store(request),
        workflows=get_workflows(request),
        engine=get_engine(request),
        triage=triage,
    )


def get_catalog(request: Request) -> OperationCatalog:
    config: AgentConfig = request.app.state.agent_config
    return config.catalog


def get_chat(request: Request) -> ChatService:
    chat: ChatService = request.app.state.chat
    return chat


Settings = Annotated[AgentSettings, Depends(get_settings)]
Db = Annotated[Database, Depends(get_database)]
Pool = Annotated[PgPool, Depends(get_pool)]
Engine = Annotated[WorkflowEngine, Depends(get_engine)]
Approvals = Annotated[ApprovalStore, Depends(get_approvals)]
Workflows = Annotated[WorkflowStore, Depends(get_workflows)]
Ledger = Annotated[ExecutionLedger, Depends(get_ledger)]
Alerts = Annotated[AlertService, Depends(get_alerts)]
AlertRecords = Annotated[AlertStore, Depends(get_alert_store)]
CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
Chat = Annotated[ChatService, Depends(get_chat)]
Catalog = Annotated[OperationCatalog, Depends(get_catalog)]
