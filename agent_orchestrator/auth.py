"""API-key authentication: `Authorization: Bearer <key>` or `X-API-Key: <key>`."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from shared.lib.principals import Principal, PrincipalDirectory


def authenticate(request: Request) -> Principal:
    directory: PrincipalDirectory = request.app.state.principals
    key = _presented_key(request)
    if not key:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing API key; send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = directory.authenticate(key)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="unknown API key; ask an admin for a key listed in config/hitl/principals.yml",
            headers={"WWW-Authenticate": "Bearer"},
        )
    request.state.principal = principal.name
    return principal


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("X-API-Key") or None
