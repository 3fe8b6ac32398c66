"""Read Slack's interactivity payloads into what the agent needs, or refuse them with a 400
naming the field.

A valid signature says who sent the request, not that its JSON has the shape Slack documents:
every field is checked for type here, before anything is decided, so that a wrong type is a 400
and never a 500 half-way through (after the decision was recorded, say).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, Json, StrictStr, ValidationError

from shared.lib.errors import DomainError
from shared.lib.safe_input import check_text
from shared.lib.slack import messages


class SlackPayloadError(DomainError):
    status_code = 400


_URL_FORBIDDEN = re.compile("[\x00-\x20\x7f]")
"""Spaces and control characters, which http.client refuses in a request line."""


def check_response_url(url: str) -> str:
    """An http(s) URL with a host, or ValueError. slack_sdk refuses anything else too, but only
    when the follow-up is posted: after the decision is recorded."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- reading it checks the port is a number
    except ValueError as error:
        raise ValueError(f"is not a URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or _URL_FORBIDDEN.search(url):
        raise ValueError("must be an http(s) URL with a host, as Slack sends")
    return url


def _response_url_or_none(url: str) -> str:
    return url and check_response_url(url)


Text = Annotated[StrictStr, AfterValidator(check_text)]
"""A string that can be stored and echoed back (no NUL, control characters, lone surrogates)."""
ResponseUrl = Annotated[StrictStr, AfterValidator(check_response_url)]
ResponseUrlOrNone = Annotated[StrictStr, AfterValidator(_response_url_or_none)]
"""A response_url, or "" for none (the dialog then answers in its HTTP reply only)."""


class Click(BaseModel):
    """One button press, as the agent needs it."""

    user_id: Text
    action_id: Text
    approval_id: UUID
    shown: Text | None = None
    response_url: ResponseUrl
    trigger_id: Text | None = None


class Submission(BaseModel):
    """The reject dialog, submitted: who, which approval, the reason typed (unchecked: the
    dialog answers a bad one itself), and where to post the outcome ("" for nowhere)."""

    user_id: str
    approval_id: UUID
    reason: str
    shown: str | None
    response_url: str


class _Metadata(BaseModel):
    """What `messages.reject_dialog` put in the view's private_metadata."""

    approval_id: UUID
    shown: Text | None = None
    response_url: ResponseUrlOrNone | None = None


class _Input(BaseModel):
    value: StrictStr | None = None


class _Block(BaseModel):
    reason: _Input = Field(alias=messages.REASON_INPUT)


class _Values(BaseModel):
    reason: _Block = Field(alias=messages.REASON_BLOCK)


class _State(BaseModel):
    values: _Values


class _View(BaseModel):
    private_metadata: Json[_Metadata]
    state: _State


class _User(BaseModel):
    id: Text


class _ViewSubmission(BaseModel):
    user: _User
    view: _View


def form_payload(text: str) -> dict[str, Any]:
    """The JSON object in the form field `payload`, as Slack posts it."""
    try:
        form = parse_qs(text, strict_parsing=True)
        payload = json.loads(form["payload"][0])
    except (KeyError, ValueError, RecursionError) as error:
        raise SlackPayloadError(
            f"expected a form body with a JSON 'payload' field (Slack's format): {error}"
        ) from None
    if not isinstance(payload, dict):
        raise SlackPayloadError("the 'payload' field is not a JSON object")
    return payload


def click(payload: dict[str, Any]) -> Click:
    try:
        action = payload["actions"][0]
        value = json.loads(action["value"])
        return Click(
            user_id=payload["user"]["id"],
            action_id=action["action_id"],
            approval_id=value["approval_id"],
            shown=value.get("shown"),
            response_url=payload["response_url"],
            trigger_id=payload.get("trigger_id"),
        )
    except ValidationError as error:
        raise SlackPayloadError(f"block_actions payload: {_problems(error)}") from None
    except (KeyError, IndexError, TypeError, ValueError, RecursionError) as error:
        raise SlackPayloadError(
            f"block_actions payload without a decision button: {error}"
        ) from None


def submission(payload: dict[str, Any]) -> Submission | None:
    """The reject dialog's submission; None for a view this agent did not open."""
    view = payload.get("view")
    if not isinstance(view, dict):
        raise SlackPayloadError("view_submission payload: 'view' must be a JSON object")
    if view.get("callback_id") != messages.REJECT_CALLBACK:
        return None
    try:
        read = _ViewSubmission.model_validate(payload)
    except ValidationError as error:
        raise SlackPayloadError(f"view_submission payload: {_problems(error)}") from None
    metadata = read.view.private_metadata
    return Submission(
        user_id=read.user.id,
        approval_id=metadata.approval_id,
        reason=read.view.state.values.reason.reason.value or "",
        shown=metadata.shown,
        response_url=metadata.response_url or "",
    )


def _problems(error: ValidationError) -> str:
    """Each bad field as `a.b.c: what is wrong`, without pydantic's model names."""
    found = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"])
        what = problem["msg"]
        if problem["type"] == "model_type":
            what = "must be a JSON object"
        elif problem["type"] == "value_error":  # our own message, without "Value error, "
            what = str(problem.get("ctx", {}).get("error", what))
        found.append(f"'{where}' {what}")
    return "; ".join(found)
