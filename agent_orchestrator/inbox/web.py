"""What every inbox route shares: the signed-in principal, CSRF checks, templates, flashes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from agent_orchestrator.deps import config_of
from shared.lib.errors import DomainError
from shared.lib.inbox.session import CSRF_FIELD, csrf_valid, new_csrf_token
from shared.lib.inbox.store import InboxStore
from shared.lib.principals import Principal
from shared.lib.safe_input import text_problem

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


class SignInRequired(Exception):
    """No valid session: the page answers with the sign-in form instead."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


async def sign_in_redirect(request: Request, error: SignInRequired) -> Response:
    return RedirectResponse(f"/inbox?next={quote(error.next_path)}", status_code=303)


async def session_principal(request: Request) -> Principal | None:
    """The session's principal, looked up again (a removed principal is signed out), while its
    session is on: a cookie kept from before a sign-out no longer signs anyone in. None when
    not signed in (also asked again by the live feed while it streams)."""
    name, session_id = request.session.get("principal"), request.session.get("sid")
    principal = config_of(request).principals.named(name) if isinstance(name, str) else None
    inbox: InboxStore = request.app.state.inbox
    if (
        principal is None
        or not isinstance(session_id, str)
        or not await inbox.signed_in(session_id, principal.name)
    ):
        return None
    return principal


async def signed_in(request: Request) -> Principal:
    """The signed-in principal, or the sign-in form (SignInRequired)."""
    principal = await session_principal(request)
    if principal is None:
        request.session.clear()
        raise SignInRequired(request.url.path)
    request.state.principal = principal.name
    return principal


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return token


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, refused with 403 unless it carries the session's CSRF token, and with
    422 naming the field when a value holds what the API refuses too (NUL, other control
    characters, lone surrogates)."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if not csrf_valid(request.session.get("csrf"), fields.get(CSRF_FIELD)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"missing or wrong form field '{CSRF_FIELD}'; reload the page (signing in "
            "again if asked) and submit the form from it",
        )
    problems = [
        {"type": "value_error", "loc": ("form", key), "msg": problem, "input": value}
        for key, value in fields.items()
        if (problem := text_problem(value))
    ]
    if problems:
        raise RequestValidationError(problems)
    return fields


SignedIn = Annotated[Principal, Depends(signed_in)]
CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def flash(request: Request, text: str, *, kind: str = "info") -> None:
    request.session["flash"] = {"kind": kind, "text": text}


def render(
    request: Request,
    template: str,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    context |= {
        "principal": principal,
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "flash": request.session.pop("flash", None),
        "now": datetime.now(UTC),
    }
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def problem_page(request: Request, error: DomainError) -> Response:
    """A refusal on an inbox page (403 someone else's approval, 404 no such row, …) as a page
    of the inbox, with the status and message the API answers with."""
    name = getattr(request.state, "principal", None)
    principal = config_of(request).principals.named(name) if isinstance(name, str) else None
    response = render(
        request, "error.html", principal=principal, status_code=error.status_code, error=error
    )
    response.headers.update(getattr(error, "headers", None) or {})
    return response


def duration(seconds: float) -> str:
    """`3d 4h`, `2h 5m`, `4m 10s`, `12s`: the two largest units."""
    left = int(abs(seconds))
    parts = [(left // 86400, "d"), (left % 86400 // 3600, "h"), (left % 3600 // 60, "m")]
    parts.append((left % 60, "s"))
    shown = [f"{value}{unit}" for value, unit in parts if value][:2]
    return " ".join(shown) or "0s"


templates.env.filters["duration"] = duration
