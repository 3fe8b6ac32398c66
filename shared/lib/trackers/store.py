"""Tracker issues by incident (fingerprint) and the outbox of what is still to be told to the
tracker; replicas claim outbox rows with SKIP LOCKED, in order per fingerprint."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from shared.lib.db.columns import columns, with_columns
from shared.lib.db.pool import Pool

OutboxKind = Literal["open", "update", "resolve"]


class OutboxRow(BaseModel):
    id: int
    tracker: str
    fingerprint: str
    kind: OutboxKind
    title: str
    body: str
    status: str
    rounds: int
    attempts: int
    last_error: str | None = None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None = None


class TrackerIssue(BaseModel):
    id: int
    tracker: str
    fingerprint: str
    issue_key: str
    issue_url: str | None
    state: str
    title: str


_SELECT_OUTBOX = with_columns("SELECT {row} FROM tracker_outbox", row=columns(OutboxRow))
_SELECT_OPEN_ISSUE = with_columns(
    "SELECT {issue} FROM tracker_issues WHERE tracker = %s AND fingerprint = %s AND state = 'open'",
    issue=columns(TrackerIssue),
)
_CLAIM_NEXT = with_columns(
    "UPDATE tracker_outbox SET claimed_until = now() + make_interval(secs => %s)"
    " WHERE id = (SELECT o.id FROM tracker_outbox o"
    "  WHERE o.tracker = %s AND o.status IN ('pending', 'dead_letter')"
    "   AND o.next_attempt_at <= now()"
    "   AND (o.claimed_until IS NULL OR o.claimed_until < now())"
    "   AND NOT EXISTS (SELECT 1 FROM tracker_outbox e WHERE e.tracker = o.tracker"
    "    AND e.fingerprint = o.fingerprint AND e.id < o.id"
    "    AND e.status IN ('pending', 'dead_letter'))"
    "  ORDER BY o.id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING {row}",
    row=columns(OutboxRow),
)


class TrackerStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def enqueue(
        self, *, tracker: str, fingerprint: str, kind: OutboxKind, title: str, body: str
    ) -> int:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "INSERT INTO tracker_outbox (tracker, fingerprint, kind, title, body)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                    (tracker, fingerprint, kind, title, body),
                )
            ).fetchone()
        assert row is not None
        return int(row["id"])

    async def knows(self, *, tracker: str, fingerprint: str) -> bool:
        """An issue is open for the incident, or one is on its way."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM tracker_issues WHERE tracker = %s"
                    "  AND fingerprint = %s AND state = 'open')"
                    " OR EXISTS (SELECT 1 FROM tracker_outbox WHERE tracker = %s"
                    "  AND fingerprint = %s AND kind = 'open'"
                    "  AND status IN ('pending', 'dead_letter')) AS known",
                    (tracker, fingerprint, tracker, fingerprint),
                )
            ).fetchone()
        return bool(row and row["known"])

    async def claim(self, *, tracker: str, lease_s: float) -> OutboxRow | None:
        """The oldest due message whose incident has nothing older still undelivered."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    _CLAIM_NEXT,
                    (lease_s, tracker),
                )
            ).fetchone()
        return OutboxRow(**row) if row else None

    async def delivered(self, row_id: int, *, attempts: int) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE tracker_outbox SET status = 'delivered', delivered_at = now(),"
                " attempts = attempts + %s, claimed_until = NULL WHERE id = %s",
                (attempts, row_id),
            )

    async def failed(
        self, row_id: int, *, attempts: int, error: str, retry_in_s: float | None
    ) -> None:
        """A dead letter retried in `retry_in_s`, or abandoned when that is None."""
        status = "dead_letter" if retry_in_s is not None else "abandoned"
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE tracker_outbox SET status = %s, rounds = rounds + 1,"
                " attempts = attempts + %s, last_error = %s, claimed_until = NULL,"
                " next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
                (status, attempts, error[:1000], retry_in_s or 0, row_id),
            )

    async def open_issue(self, *, tracker: str, fingerprint: str) -> TrackerIssue | None:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    _SELECT_OPEN_ISSUE,
                    (tracker, fingerprint),
                )
            ).fetchone()
        return TrackerIssue(**row) if row else None

    async def record_issue(
        self, *, tracker: str, fingerprint: str, key: str, url: str | None, title: str
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO tracker_issues (tracker, fingerprint, issue_key, issue_url, title)"
                " VALUES (%s, %s, %s, %s, %s)",
                (tracker, fingerprint, key, url, title),
            )

    async def touch(self, issue_id: int, *, closed: bool = False) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE tracker_issues SET updated_at = now(),"
                " state = CASE WHEN %s THEN 'closed' ELSE state END WHERE id = %s",
                (closed, issue_id),
            )

    async def undelivered(self, *, limit: int = 100) -> list[OutboxRow]:
        """Messages the tracker has not taken yet (pending, dead letters, abandoned), newest
        first: what a person looks at when incidents do not show up in the tracker."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    _SELECT_OUTBOX + " WHERE status <> 'delivered' ORDER BY id DESC LIMIT %s",
                    (limit,),
                )
            ).fetchall()
        return [OutboxRow(**row) for row in rows]

    async def outbox(self, *, fingerprint: str | None = None) -> list[OutboxRow]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    _SELECT_OUTBOX + " WHERE %s::text IS NULL OR fingerprint = %s ORDER BY id",
                    (fingerprint, fingerprint),
                )
            ).fetchall()
        return [OutboxRow(**row) for row in rows]
