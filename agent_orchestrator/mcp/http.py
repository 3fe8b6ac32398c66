"""Streamable HTTP at /mcp: the caller's bearer API key is checked against the same principals as
the REST API before any MCP message is read, and each request reaches the agent as that principal.

The SDK's session manager only serves requests inside its `run()` context, and Starlette never
runs a mounted app's own lifespan (docs/upstream-limits.md), so the server, its session manager
and this endpoint are built and run in the service's lifespan; the route added at app creation
only forwards to whatever the lifespan built.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_orchestrator import __version__
from agent_orchestrator.runtime import AgentRuntime
from shared.lib.mcp.backend import BackendError
from shared.lib.mcp.local import LocalBackend
from shared.lib.mcp.server import Context, build_server
from shared.lib.principals import Principal, PrincipalDirectory, hash_api_key
from shared.lib.settings import Settings

MCP_PATH = "/mcp"
_REFUSAL = (
    "missing or unknown API key; connect with 'Authorization: Bearer <key>' using a key "
    "listed (hashed) in config/hitl/principals.yml"
)


class PrincipalTokenVerifier:
    """The SDK's token verifier over the principals file: an API key is the bearer token."""

    def __init__(self, principals: PrincipalDirectory) -> None:
        self._principals = principals

    async def verify_token(self, token: str) -> AccessToken | None:
        principal = self._principals.authenticate(token)
        if principal is None:
            return None
        # The session manager binds each MCP session to the client_id that opened it.
        return AccessToken(
            token=hash_api_key(token), client_id=principal.name, scopes=sorted(principal.roles)
        )


class RequirePrincipal:
    """Refuse, before the MCP transport reads anything, a request without a known key."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if isinstance(scope.get("user"), AuthenticatedUser):
            await self._app(scope, receive, send)
            return
        body = json.dumps({"detail": _REFUSAL}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer error="invalid_token"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def mcp_endpoint(runtime: AgentRuntime, settings: Settings) -> AsyncIterator[ASGIApp]:
    """The authenticated MCP endpoint, served for as long as this context is open."""

    def backend_for(ctx: Context) -> LocalBackend:
        return LocalBackend(
            principal=_caller(ctx),
            engine=runtime.engine,
            workflows=runtime.workflows,
            catalog=runtime.config.catalog,
            resolver=runtime.config.targets,
            public_url=settings.public_url,
        )

    server = build_server(backend_for=backend_for, version=__version__)
    # No DNS-rebinding host check: every request must carry an API key, which a page
    # rebinding a name to this service cannot add.
    manager = StreamableHTTPSessionManager(app=server, security_settings=None)
    endpoint = AuthenticationMiddleware(
        RequirePrincipal(StreamableHTTPASGIApp(manager)),
        backend=BearerAuthBackend(PrincipalTokenVerifier(runtime.config.principals)),
    )
    async with manager.run():
        yield endpoint


class McpRoute:
    """The ASGI app behind the /mcp route: forwards to the endpoint the lifespan built."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint: Any = getattr(scope["app"].state, "mcp_endpoint", None)
        if endpoint is None:
            body = b'{"detail": "the MCP endpoint is not running; the service is starting or stopping"}'  # noqa: E501
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await endpoint(scope, receive, send)


def _caller(ctx: Context) -> Principal:
    user = getattr(ctx.request, "user", None)
    if not isinstance(user, AuthenticatedUser):
        raise BackendError("this MCP request carries no authenticated principal; reconnect")
    token = user.access_token
    return Principal(name=token.client_id, roles=frozenset(token.scopes))
