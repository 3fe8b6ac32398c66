"""Chat endpoints: a message and its reply, the same as Server-Sent Events, and the history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from agent_orchestrator.chat.schemas import ChatRequest
from agent_orchestrator.deps import Chat, CurrentPrincipal
from agent_orchestrator.system.errors import AUTHENTICATED, WITH_BODY, responses
from shared.lib.chat.models import ChatEvent, ChatHistory, ChatReply

router = APIRouter(tags=["chat"], responses=responses(*AUTHENTICATED))


@router.post("/chat", responses=responses(*WITH_BODY, 403, 404, 409))
async def chat(
    body: ChatRequest, principal: CurrentPrincipal, chat: Chat, request: Request
) -> ChatReply:
    """Ask in plain words; read-only answers come at once, changes wait for approval."""
    session = await chat.open_session(session_id=body.session_id, principal=principal)
    return await chat.converse(
        session=session,
        principal=principal,
        message=body.message,
        request_id=request.state.request_id,
    )


@router.post(
    "/chat/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        **responses(*WITH_BODY, 403, 404, 409),
    },
)
async def chat_stream(
    body: ChatRequest, principal: CurrentPrincipal, chat: Chat, request: Request
) -> StreamingResponse:
    """The same as POST /chat, as events: planning, executing, awaiting_approval, result."""
    session = await chat.open_session(session_id=body.session_id, principal=principal)
    events = chat.stream(
        session=session,
        principal=principal,
        message=body.message,
        request_id=request.state.request_id,
    )
    return StreamingResponse(
        _server_sent(events),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/chat/{session_id}", responses=responses(403, 404))
async def chat_history(session_id: UUID, principal: CurrentPrincipal, chat: Chat) -> ChatHistory:
    """The conversation so far, oldest message first, and what the session remembers."""
    return await chat.history(session_id=session_id, principal=principal)


async def _server_sent(events: AsyncIterator[ChatEvent]) -> AsyncIterator[str]:
    async for event in events:
        yield event.as_sse()
