"""One place that maps errors to HTTP answers: domain errors, bad input, a database outage."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout

from shared.lib.errors import DomainError

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_S = 5


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(psycopg.OperationalError, _database_down)


async def _domain_error(request: Request, error: DomainError) -> JSONResponse:
    return JSONResponse(status_code=error.status_code, content={"detail": str(error)})


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, with each problem's input made encodable (a lone surrogate is echoed
    escaped) and its message without pydantic's 'Value error, ' prefix."""
    problems = []
    for problem in jsonable_encoder(error.errors(), custom_encoder={Exception: str}):
        problem.pop("ctx", None)
        problem["msg"] = str(problem.get("msg", "")).removeprefix("Value error, ")
        problems.append(_encodable(problem))
    return JSONResponse(status_code=422, content={"detail": problems})


async def _database_down(request: Request, error: Exception) -> JSONResponse:
    log.error("database unavailable", extra={"error": str(error), "path": request.url.path})
    return JSONResponse(
        status_code=503,
        content={
            "detail": "the database is unavailable right now; retry shortly, and if it "
            "persists check that Postgres at DATABASE_URL is running and reachable"
        },
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_encodable(item) for item in value]
    if isinstance(value, dict):
        return {_encodable(key): _encodable(item) for key, item in value.items()}
    return value
