"""The web inbox at /inbox: server-rendered pages (Jinja2 + vendored htmx) for approvers."""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from agent_orchestrator.inbox.actions import router as actions_router
from agent_orchestrator.inbox.pages import router as pages_router
from agent_orchestrator.inbox.web import SignInRequired, problem_page, sign_in_redirect
from shared.lib.errors import DomainError
from shared.lib.inbox.session import session_secret
from shared.lib.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"
SESSION_COOKIE = "agent_inbox"
INBOX_PREFIX = "/inbox"


def mount_inbox(app: FastAPI, settings: Settings) -> None:
    """Routes, static files and the signed session cookie (HttpOnly, SameSite=Strict,
    expiring; Secure when the public URL is https), scoped to /inbox. Call after the API's
    error handlers are installed: a refusal on an inbox page is answered as a page."""
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        path="/inbox",
        same_site="strict",
        https_only=settings.public_url.startswith("https://"),
    )
    app.add_exception_handler(SignInRequired, sign_in_redirect)  # type: ignore[arg-type]
    api_answer = app.exception_handlers[DomainError]

    async def domain_error(request: Request, error: Exception) -> Response:
        """Refusals under /inbox/ as inbox pages; the API's JSON answer everywhere else."""
        if request.url.path.startswith(f"{INBOX_PREFIX}/") and isinstance(error, DomainError):
            return problem_page(request, error)
        answer = api_answer(request, error)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(DomainError, domain_error)
    app.mount("/inbox/static", StaticFiles(directory=STATIC_DIR), name="inbox-static")
    app.include_router(pages_router)
    app.include_router(actions_router)
