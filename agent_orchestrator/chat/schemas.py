"""Request bodies of the chat endpoints (replies are the chat domain's models)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.lib.safe_input import SafeText


class ChatRequest(BaseModel):
    # Refused by name, never ignored: a misspelled `session_id` would start a new conversation
    # in which "approve it" or "yes" means nothing the caller thinks it does.
    model_config = ConfigDict(extra="forbid")

    message: SafeText = Field(min_length=1, max_length=4000, examples=["restart web on prod"])
    session_id: UUID | None = Field(
        default=None, description="Continue this conversation; leave out to start one."
    )
