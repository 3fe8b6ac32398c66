"""API-key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`.

The request gate (system/gate.py) checks the key before the body is read and throttles wrong
ones; this dependency gives routes the typed principal and the OpenAPI description its schemes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers

from shared.lib.principals import Principal, PrincipalDirectory

MISSING_KEY = "missing API key; send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"
UNKNOWN_KEY = "unknown API key; ask an admin for a key listed in config/hitl/principals.yml"

_bearer = HTTPBearer(auto_error=False, description="An API key as a bearer token.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")


def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    directory: PrincipalDirectory = request.app.state.principals
    key = presented_key(request.headers)
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=MISSING_KEY, headers={"WWW-Authenticate": "Bearer"}
        )
    principal = directory.authenticate(key)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=UNKNOWN_KEY, headers={"WWW-Authenticate": "Bearer"}
        )
    request.state.principal = principal.name
    return principal


def presented_key(headers: Headers) -> str | None:
    header = headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("X-API-Key") or None
