"""Every dependency a route may ask for, as typed aliases; routes never build clients."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shared.lib.db.database import Database
from shared.lib.db.pool import Pool as PgPool
from shared.lib.settings import Settings as AgentSettings


def get_settings(request: Request) -> AgentSettings:
    settings: AgentSettings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_pool(request: Request) -> PgPool:
    return get_database(request).pool


Settings = Annotated[AgentSettings, Depends(get_settings)]
Db = Annotated[Database, Depends(get_database)]
Pool = Annotated[PgPool, Depends(get_pool)]
