"""Tell every replica at once that an approval was settled, through Postgres LISTEN/NOTIFY.

The deciding replica hands the resume to its own runner directly; the NOTIFY (sent inside the
settling transaction, so delivered only if it commits) reaches the others. A replica that
hears of another's settlement gives the settler `HANDOFF_GRACE_S` to resume it itself, then
tries the same exactly-once claim (`claim_resume`): when the settler resumed, the claim fails
and the notice is ignored; when it died between its commit and its claim, one listener wins
and resumes within seconds instead of after the recovery grace. A person's decision claims its
resume in its own transaction (`recording`), so for it that window does not exist and the
claim always fails here; withdrawals and expiries claim after their commit. Recovery stays the
safety net for a notice nobody heard (Postgres does not queue notices for a listener that is
down) and for a claimed resume whose claimer died.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from uuid import UUID

from psycopg import AsyncConnection, OperationalError
from psycopg.rows import DictRow

log = logging.getLogger(__name__)

CHANNEL = "approval_settled"

# Which process sent a notice: a replica ignores its own (it resumed in process already).
PROCESS_ID = uuid.uuid4().hex

RECONNECT_S = 1.0

# How long another replica's decider has to claim its own resume before a listener may.
HANDOFF_GRACE_S = 5.0

SettledHandler = Callable[[UUID], Awaitable[object]]


def settled_notice(*, approval_id: UUID, workflow_id: str) -> tuple[str, str]:
    """The channel and payload of the notice that an approval was settled here."""
    payload = json.dumps(
        {"approval_id": str(approval_id), "workflow_id": workflow_id, "origin": PROCESS_ID}
    )
    return CHANNEL, payload


async def notify_settled(
    conn: AsyncConnection[DictRow], *, approval_id: UUID, workflow_id: str
) -> None:
    """Queue the notice in the caller's transaction; Postgres sends it at commit."""
    channel, payload = settled_notice(approval_id=approval_id, workflow_id=workflow_id)
    await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


class SettledListener:
    """A task holding one connection that LISTENs; reconnects after losing it."""

    def __init__(
        self, url: str, on_settled: SettledHandler, *, grace_s: float = HANDOFF_GRACE_S
    ) -> None:
        self._url = url
        self.grace_s = grace_s
        self._on_settled = on_settled
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[object]] = set()
        self.listening = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="approval-settled-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for handler in list(self._handlers):
            handler.cancel()  # recovery resumes what a closing replica leaves

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except OperationalError as lost:
                log.warning(
                    "approval notices: connection lost; reconnecting",
                    extra={"error": str(lost), "retry_s": RECONNECT_S},
                )
            self.listening.clear()
            await asyncio.sleep(RECONNECT_S)

    async def _listen(self) -> None:
        async with await AsyncConnection.connect(self._url, autocommit=True) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.listening.set()
            async for notice in conn.notifies():
                self._heard(notice.payload)

    def _heard(self, payload: str) -> None:
        try:
            fields = json.loads(payload)
            approval_id, origin = UUID(fields["approval_id"]), fields["origin"]
        except (ValueError, KeyError, TypeError):
            log.warning("approval notices: ignored a malformed notice", extra={"payload": payload})
            return
        if origin == PROCESS_ID:
            return  # decided here: the resume was handed to this process's runner already
        task = asyncio.create_task(self._handle(approval_id))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _handle(self, approval_id: UUID) -> object:
        await asyncio.sleep(self.grace_s)  # the decider's own hand-off goes first
        try:
            return await self._on_settled(approval_id)
        except Exception:  # recovery picks it up; the listener stays up
            log.exception("approval notices: resume failed", extra={"approval_id": approval_id})
            return None
