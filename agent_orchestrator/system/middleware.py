"""The outermost layer: give every request an id (the caller's X-Request-ID or a new one), say
how long the server took before it answered (`Server-Timing: app;dur=<ms>`), log one access
line per request naming its principal, and turn an unhandled error into a logged 500 that
carries the request id, so even a crash leaves a line to find it by.

Inside it, `KnownMethodsOnly` answers a method outside HTTP's standard set with 405 before the
metrics count it: each method name would otherwise be a label value of its own, and anyone
could grow /metrics without limit by inventing them."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.lib.logs import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
# From the request's arrival to its response's first line (for a stream, its first event).
SERVER_TIMING_HEADER = "Server-Timing"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
log = logging.getLogger("agent_orchestrator.access")

KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
"""RFC 9110's methods and PATCH: the only values the method label of the HTTP metrics takes."""


class KnownMethodsOnly:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if scope["type"] != "http" or method in KNOWN_METHODS:
            await self.app(scope, receive, send)
            return
        allowed = _methods_at(scope)
        where = f"{scope['path']} takes {', '.join(allowed)}" if allowed else "no route here"
        reply = JSONResponse(
            status_code=405,
            content={
                "detail": f"method {str(method)[:32]!r} is not one this service takes ({where}); "
                "/openapi.json lists each path's methods"
            },
            headers={"Allow": ", ".join(allowed)},
        )
        await reply(scope, receive, send)


def _methods_at(scope: Scope) -> list[str]:
    """The standard methods some route at this path takes: what FastAPI's own 405 allows.
    (Mounted apps are left out: they would match any method.)"""
    routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
    return sorted(
        method
        for method in KNOWN_METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in routes
            if not isinstance(route, Mount)
        )
    )


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        request_id = offered if _SAFE_REQUEST_ID.match(offered) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        sent: dict[str, int] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                headers = MutableHeaders(scope=message)
                headers.append(REQUEST_ID_HEADER, request_id)
                took_ms = (time.perf_counter() - started) * 1000
                headers.append(SERVER_TIMING_HEADER, f"app;dur={took_ms:.1f}")
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # the last resort: log it with the request id, answer 500 as JSON
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if "status" not in sent:
                reply = JSONResponse(
                    status_code=500,
                    content={
                        "detail": f"internal error; quote request id {request_id} when "
                        "reporting it",
                        "request_id": request_id,
                    },
                )
                await reply(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": sent.get("status", 500),
                    "principal": state.get("principal"),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)
