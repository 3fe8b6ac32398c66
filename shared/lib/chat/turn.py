"""One chat message being answered: who asked, what, what the session remembers, and where its
events go. Shared by the service and the modules that answer parts of a turn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared.lib.chat.models import ChatReply, ChatStatus, SessionContext
from shared.lib.principals import Principal

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


async def quiet(event: str, data: dict[str, Any]) -> None:
    return None


@dataclass
class Turn:
    """One message being answered."""

    session_id: UUID
    principal: Principal
    message: str
    request_id: str | None
    context: SessionContext
    emit: Emit

    def reply(self, text: str, status: ChatStatus, **fields: Any) -> ChatReply:
        return ChatReply(session_id=self.session_id, reply=text, status=status, **fields)
