"""Chat sessions and messages in Postgres; a session belongs to the principal who opened it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

from shared.lib.db.columns import columns, with_columns
from shared.lib.db.pool import Pool
from shared.lib.errors import NotFoundError

MessageRole = Literal["user", "assistant", "system"]


class ChatSession(BaseModel):
    id: UUID
    principal: str
    context: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class ChatMessage(BaseModel):
    id: int
    role: MessageRole
    content: str
    workflow_id: str | None = None
    approval_id: UUID | None = None
    created_at: datetime


_CREATE_SESSION = with_columns(
    "INSERT INTO chat_sessions (id, principal) VALUES (%s, %s) RETURNING {session}",
    session=columns(ChatSession),
)
_SELECT_SESSION = with_columns(
    "SELECT {session} FROM chat_sessions WHERE id = %s AND principal = %s",
    session=columns(ChatSession),
)


class ChatStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create_session(self, *, principal: str) -> ChatSession:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    _CREATE_SESSION,
                    (uuid.uuid4(), principal),
                )
            ).fetchone()
        assert row is not None
        return ChatSession(**row)

    async def session(self, *, session_id: UUID, principal: str) -> ChatSession:
        """The principal's session; someone else's is reported missing, not forbidden."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    _SELECT_SESSION,
                    (session_id, principal),
                )
            ).fetchone()
        if row is None:
            raise NotFoundError(
                f"chat session '{session_id}' not found for '{principal}'; leave out "
                "session_id to start a new conversation"
            )
        return ChatSession(**row)

    async def set_context(self, *, session_id: UUID, context: dict[str, Any]) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE chat_sessions SET context = %s, updated_at = now() WHERE id = %s",
                (Jsonb(context), session_id),
            )

    async def add_message(
        self,
        *,
        session_id: UUID,
        role: MessageRole,
        content: str,
        workflow_id: str | None = None,
        approval_id: UUID | None = None,
    ) -> ChatMessage:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "INSERT INTO chat_messages (session_id, role, content, workflow_id,"
                    " approval_id) VALUES (%s, %s, %s, %s, %s)"
                    " RETURNING id, role, content, workflow_id, approval_id, created_at",
                    (session_id, role, content, workflow_id, approval_id),
                )
            ).fetchone()
        assert row is not None
        return ChatMessage(**row)

    async def messages(self, *, session_id: UUID, last: int | None = None) -> list[ChatMessage]:
        """The session's messages, oldest first; only the `last` ones when given."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT id, role, content, workflow_id, approval_id, created_at"
                    " FROM chat_messages WHERE session_id = %s ORDER BY id DESC LIMIT %s",
                    (session_id, last),
                )
            ).fetchall()
        return [ChatMessage(**row) for row in reversed(rows)]
