"""One place that maps errors to HTTP answers: domain errors, bad input, a database outage."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel

from shared.lib.errors import DomainError

log = logging.getLogger(__name__)

DATABASE_RETRY_AFTER_S = 5


class Problem(BaseModel):
    """One field a request got wrong: where (`loc`), what (`msg`), and the value sent."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None


class ErrorBody(BaseModel):
    """Every error answer: a message naming the thing and the way out, or the bad fields."""

    detail: str | list[Problem]
    request_id: str | None = None


_MEANINGS = {
    400: "The request cannot be read or the domain refuses it",
    401: "No API key, or an unknown one (a wrong webhook token on the webhook)",
    403: "The principal's roles do not allow this",
    404: "No such workflow, approval or chat session",
    408: "The request body did not arrive in time (AGENT_BODY_TIMEOUT_S)",
    409: "The state changed: already decided, superseded, or still awaiting a decision",
    413: "The request body is too large (AGENT_MAX_BODY_BYTES)",
    422: "A field is invalid; `detail` names each one",
    429: "Too many wrong keys or tokens from this address; see Retry-After",
    503: "The database is unavailable (or the webhook is off); retry after Retry-After",
}
AUTHENTICATED = (401, 422, 429, 503)
"""What any authenticated operation may answer besides success."""
WITH_BODY = (400, 408, 413)
"""What an operation that reads a body may answer besides."""


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each with the ErrorBody model."""
    return {code: {"model": ErrorBody, "description": _MEANINGS[code]} for code in codes}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(psycopg.OperationalError, _database_down)


async def _domain_error(request: Request, error: DomainError) -> JSONResponse:
    headers: dict[str, str] | None = getattr(error, "headers", None)  # Retry-After on a 429
    return JSONResponse(
        status_code=error.status_code, content={"detail": str(error)}, headers=headers
    )


async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    return invalid_fields(error.errors())


def invalid_fields(found: Iterable[Mapping[str, Any]]) -> JSONResponse:
    """The 422 naming each bad field: FastAPI's shape, with each problem's input made encodable
    (a lone surrogate or a byte that is not UTF-8 is echoed escaped, NaN as text, nesting cut
    short) and its message without pydantic's 'Value error, ' prefix; a field the body does not
    take says so by name. The request gate answers a JSON key given twice with it too."""
    problems = []
    for item in found:
        problem = {key: value for key, value in item.items() if key != "ctx"}
        problem = jsonable_encoder(_encodable(problem), custom_encoder={Exception: str})
        problem["msg"] = str(problem.get("msg", "")).removeprefix("Value error, ")
        if problem.get("loc") == ["body"] and problem.get("type") == "model_attributes_type":
            problem["msg"] = (
                "the body was not read as a JSON object; send it as JSON with the header "
                "'Content-Type: application/json' (curl -d sends a form unless told)"
            )
        if problem.get("type") == "extra_forbidden" and problem.get("loc"):
            problem["msg"] = (
                f"unknown field {str(problem['loc'][-1])!r}: it is refused rather than ignored; "
                "correct its spelling or leave it out (GET /openapi.json lists the fields)"
            )
        problems.append(problem)
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


# How deep an echoed input is shown: a body nested hundreds of levels is refused all the same,
# and echoing it whole would recurse past Python's limit.
ECHO_DEPTH = 8


def _encodable(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bytes):  # a body that is not UTF-8, as the parser saw it
        return value.decode("utf-8", "backslashreplace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and Infinity have no JSON: echoed as "nan", "inf"
    if isinstance(value, list | tuple | dict) and depth >= ECHO_DEPTH:
        return "..."
    if isinstance(value, list | tuple):
        return [_encodable(item, depth + 1) for item in value]
    if isinstance(value, dict):
        return {
            _encodable(key, depth + 1): _encodable(item, depth + 1) for key, item in value.items()
        }
    return value
