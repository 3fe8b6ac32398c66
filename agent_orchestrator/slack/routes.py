"""POST /slack/interactivity: Approve / Reject clicks and the reject-reason dialog."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from agent_orchestrator.deps import Slack
from agent_orchestrator.system.errors import WITH_BODY, responses

router = APIRouter(tags=["slack"], responses=responses(401, 404, 422, 429, *WITH_BODY))


@router.post("/slack/interactivity")
async def interactivity(request: Request, slack: Slack) -> Response:
    """Slack signs every request (X-Slack-Signature); unsigned or stale ones get a 401."""
    answer = await slack.handle(
        body=await request.body(),
        timestamp=request.headers.get("X-Slack-Request-Timestamp"),
        signature=request.headers.get("X-Slack-Signature"),
    )
    return JSONResponse(answer) if answer is not None else Response(status_code=200)
