"""Checks made before the app reads a byte of a request's body: who is calling (with wrong
credentials throttled per client address), how large the body is and how slowly it arrives,
and whether a JSON body gives a key twice.

Anonymous callers thus get a 401 without the body being buffered or parsed, and a body is only
handed to the app once it is complete and within bounds. The app gets the very bytes that
arrived (a webhook checks its signature over them); a JSON body that gives a key twice never
reaches it, as the json module would silently keep the last value (see json_keys.py).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_orchestrator.system.errors import invalid_fields
from agent_orchestrator.system.json_keys import repeated_keys, unreadable
from shared.lib.metrics import AUTH_FAILURES
from shared.lib.principals import MISSING_KEY, UNKNOWN_KEY, PrincipalDirectory, presented_key
from shared.lib.settings import Settings

Guard = Literal["open", "signed", "api_key", "webhook_token", "metrics_token"]

WEBHOOK_PATH = "/webhook/alerts"
WEBHOOK_MAX_BODY_BYTES = 1_000_000
"""Alertmanager groups up to 1,000 alerts in one delivery; they get more room."""
_OPEN_PATHS = frozenset({"/health", "/ready", "/openapi.json", "/docs", "/redoc"})
DOCS_ASSETS = "/docs-assets"
SIGNED_PATHS = frozenset({"/webhook/sentry", "/webhook/github", "/slack/interactivity"})
"""Deliveries signed by their sender: the route verifies the signature and records refusals."""
INBOX = "/inbox"
"""The web inbox signs people in itself (session cookie, CSRF on every form); its sign-in form
counts wrong keys in the gate's own throttle (`wrong_key_throttle`)."""


def guard_of(path: str) -> Guard:
    if path in _OPEN_PATHS or path.startswith(f"{DOCS_ASSETS}/"):
        return "open"
    if path == INBOX or path.startswith(f"{INBOX}/"):
        return "open"
    if path in SIGNED_PATHS:
        return "signed"
    if path == WEBHOOK_PATH:
        return "webhook_token"
    if path == "/metrics":
        return "metrics_token"
    return "api_key"


class WrongKeyThrottle:
    """Wrong keys and tokens counted per client address, however they were presented (a header
    at the gate, the inbox's sign-in form): past AGENT_AUTH_FAILURES_PER_MINUTE the address is
    refused with 429 until the minute has passed, a right key included."""

    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._failures = RateLimitItemPerMinute(settings.auth_failures_per_minute)

    async def retry_after(self, client: str) -> int | None:
        """None while `client` may present a key; else the seconds it must wait."""
        if await self._limiter.test(self._failures, client):
            return None
        stats = await self._limiter.get_window_stats(self._failures, client)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def failed(self, client: str) -> None:
        """Count one wrong key or token from `client`."""
        await self._limiter.hit(self._failures, client)


def client_of(scope: Scope) -> str:
    """The address wrong keys are counted by."""
    return str((scope.get("client") or ("unknown", 0))[0])


def throttled_detail(client: str, retry_after: int) -> str:
    return (
        f"too many wrong API keys or tokens from {client}; wait {retry_after} s before "
        "trying again, with a key listed in config/hitl/principals.yml"
    )


def wrong_key_throttle(app: Any) -> WrongKeyThrottle:
    """The app's one throttle, shared by the gate and the inbox's sign-in form."""
    throttle: WrongKeyThrottle = app.state.wrong_keys
    return throttle


class RequestGate:
    def __init__(
        self, app: ASGIApp, *, settings: Settings, throttle: WrongKeyThrottle | None = None
    ) -> None:
        self.app = app
        self._settings = settings
        self._throttle = throttle or WrongKeyThrottle(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = await self._authenticate(scope)
        if refusal is None:
            refusal, receive = await self._read_body(scope, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Response | None:
        guard = guard_of(scope["path"])
        if guard in ("open", "signed"):
            return None
        headers = Headers(scope=scope)
        client = client_of(scope)
        retry_after = await self._throttle.retry_after(client)
        if retry_after is not None:
            AUTH_FAILURES.labels(credential=guard, outcome="throttled").inc()
            return _error(
                429, throttled_detail(client, retry_after), {"Retry-After": str(retry_after)}
            )
        principal, problem = self._principal(guard, headers, scope)
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
            return None
        if problem is None:  # the route itself answers (the webhook without a token set)
            return None
        if problem is not MISSING_KEY:  # only wrong credentials count towards the throttle
            await self._throttle.failed(client)
            AUTH_FAILURES.labels(credential=guard, outcome="rejected").inc()
        return _error(401, problem, {"WWW-Authenticate": "Bearer"})

    def _principal(
        self, guard: Guard, headers: Headers, scope: Scope
    ) -> tuple[str | None, str | None]:
        """The caller's name, or why not (None and None: let the route decide)."""
        if guard == "webhook_token":
            token = self._settings.alert_webhook_token
            if token is None:
                return None, None
            if _bearer_matches(headers, token.get_secret_value()):
                return "alertmanager", None
            return None, (
                "missing or wrong bearer token; send 'Authorization: Bearer <token>' with the "
                "value of AGENT_ALERT_WEBHOOK_TOKEN"
            )
        if guard == "metrics_token":
            token = self._settings.metrics_token
            if token is not None and _bearer_matches(headers, token.get_secret_value()):
                return "metrics", None
        key = presented_key(headers)
        if not key:
            return None, MISSING_KEY
        directory: PrincipalDirectory = scope["app"].state.agent_config.principals
        principal = directory.authenticate(key)
        return (principal.name, None) if principal is not None else (None, UNKNOWN_KEY)

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        """The whole body, bounded in size and time, then replayed to the app."""
        delivery = scope["path"] == WEBHOOK_PATH or scope["path"] in SIGNED_PATHS
        setting = self._settings.max_body_bytes
        limit = max(WEBHOOK_MAX_BODY_BYTES, setting) if delivery else setting
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _too_large(limit, setting), receive
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self._settings.body_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":  # the client went away
                        return None, _replay([message], receive)
                    chunk: bytes = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        return _too_large(limit, setting), receive
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            return _error(
                408,
                f"the request body did not arrive within {self._settings.body_timeout_s:g} s "
                "(AGENT_BODY_TIMEOUT_S); send it in one go",
                {"Connection": "close"},
            ), receive
        body = b"".join(chunks)
        # A signed delivery is left to its route, which checks the signature before anything
        # else and records a refusal; its sender (Sentry, GitHub) writes the JSON, no person.
        if body and guard_of(scope["path"]) != "signed" and _read_as_json(scope):
            problem = unreadable(body)
            problems = [problem] if problem else repeated_keys(body)
            if problems:
                return invalid_fields(problems), receive
        message = {"type": "http.request", "body": body, "more_body": False}
        return None, _replay([message], receive)


def _replay(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _read_as_json(scope: Scope) -> bool:
    """Whether FastAPI reads this body as JSON: no content type, `application/json` or
    `application/*+json`. Forms (the web inbox, Slack) and other bodies pass untouched."""
    content_type = Headers(scope=scope).get("content-type")
    if not content_type:
        return True
    media_type = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _bearer_matches(headers: Headers, expected: str) -> bool:
    scheme, _, presented = headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    )


def _too_large(limit: int, setting: int) -> Response:
    """413, naming the limit that applied: the setting, or the larger one webhooks and signed
    deliveries get when the setting is below it."""
    where, hint = "AGENT_MAX_BODY_BYTES", "send less, or raise the setting"
    if limit != setting:
        where, hint = "the limit for webhook and signed deliveries", "send less"
    return _error(
        413,
        f"the request body is larger than {limit} bytes ({where}); {hint}",
        {"Connection": "close"},
    )


def _error(status: int, detail: str, headers: dict[str, Any]) -> Response:
    return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)
