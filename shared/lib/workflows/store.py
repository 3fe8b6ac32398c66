"""The durable workflow record beside LangGraph's checkpoints: status, plan, risk, timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

from shared.lib.db.columns import columns, with_columns
from shared.lib.db.pool import Pool, implicit_transaction
from shared.lib.errors import NotFoundError

TERMINAL_STATUSES = frozenset(
    {
        "completed",
        "failed",
        "rejected",
        "expired",
        "withdrawn",
        "needs_clarification",
        "merged",
        "rolled_back",
    }
)

# Columns a node may set; anything else is a programming error.
_UPDATABLE = frozenset(
    {"status", "plan", "risk", "approval_id", "results", "verification", "error", "outcome"}
)
_JSON_COLUMNS = frozenset({"plan", "risk", "results", "verification", "outcome"})

_INSERT_EVENT = "INSERT INTO workflow_events (workflow_id, event, detail) VALUES (%s, %s, %s)"


class WorkflowEvent(BaseModel):
    event: str
    detail: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime


class WorkflowRecord(BaseModel):
    id: str
    status: str
    source: str
    requester: str
    request: dict[str, Any]
    plan: list[dict[str, Any]] | None = None
    risk: dict[str, Any] | None = None
    approval_id: UUID | None = None
    results: list[dict[str, Any]] = Field(default_factory=list)
    verification: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    outcome: dict[str, Any] | None = None
    """Why planning stopped: the question and candidates, or the rule that refused."""
    request_id: str | None = None
    merged_into: str | None = None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


_COLUMNS = columns(WorkflowRecord)
_SELECT = with_columns("SELECT {record} FROM workflows", record=_COLUMNS)


class WorkflowStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create(
        self,
        *,
        workflow_id: str,
        source: str,
        requester: str,
        request: dict[str, Any],
        request_id: str | None,
    ) -> None:
        async with self._pool.connection() as conn:  # one statement: row and event together
            await conn.execute(
                "WITH created AS (INSERT INTO workflows (id, source, requester, request,"
                " request_id) VALUES (%s, %s, %s, %s, %s))"
                " INSERT INTO workflow_events (workflow_id, event, detail) VALUES (%s, %s, %s)",
                (
                    workflow_id,
                    source,
                    requester,
                    Jsonb(request),
                    request_id,
                    workflow_id,
                    "received",
                    Jsonb({"source": source, "requester": requester}),
                ),
            )

    async def get(self, workflow_id: str) -> WorkflowRecord:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_SELECT + " WHERE id = %s", (workflow_id,))).fetchone()
        if row is None:
            raise NotFoundError(f"workflow '{workflow_id}' not found")
        return WorkflowRecord(**row)

    async def update(
        self,
        workflow_id: str,
        *,
        event: str | None = None,
        detail: dict[str, Any] | None = None,
        returning: bool = False,
        **fields: Any,
    ) -> WorkflowRecord | None:
        """Set columns and append a timeline event in one transaction; with `returning`, the
        row as it now is (who is told the workflow ended need not read it again)."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"workflow columns {sorted(unknown)} cannot be updated")
        assignments = [f"{name} = %s" for name in fields]
        values = [Jsonb(v) if name in _JSON_COLUMNS else v for name, v in fields.items()]
        if fields.get("status") in TERMINAL_STATUSES:
            assignments.append("finished_at = coalesce(finished_at, now())")
        # One statement (the event appended by a CTE beside the UPDATE), committed only once
        # it has answered: a process killed while its UPDATE waits on a row lock must leave
        # nothing behind, and an autocommit statement would still commit once the lock frees
        # (tests/integration/test_workflow_updates.py; the crash test's after_step counts on
        # it). Two round trips, no BEGIN or COMMIT statement (see `implicit_transaction`).
        params: list[Any] = []
        parts: list[str] = []
        if assignments:
            # Column names come from _UPDATABLE only; values are parameters.
            columns = ", ".join(assignments)
            parts.append(f"UPDATE workflows SET {columns}, updated_at = now() WHERE id = %s")  # noqa: S608
            params += [*values, workflow_id]
        if event:
            parts.append(_INSERT_EVENT)
            params += [workflow_id, event, Jsonb(detail or {})]
        if not parts:
            return None
        if returning and assignments:
            event_part = f", event AS ({parts[1]})" if event else ""
            query = f"WITH updated AS ({parts[0]} RETURNING {_COLUMNS}){event_part}"
            query += f" SELECT {_COLUMNS} FROM updated"  # noqa: S608 (model's fields)
        elif len(parts) == 1:
            query = f"{parts[0]} RETURNING 1"
        else:
            query = f"WITH updated AS ({parts[0]}) {parts[1]} RETURNING 1"
        async with implicit_transaction(self._pool) as conn:
            cursor = await conn.execute(query.encode(), params)
            row = await cursor.fetchone()  # answered, not committed: the block's end commits it
        return WorkflowRecord(**row) if returning and assignments and row else None

    async def timeline(self, workflow_id: str) -> list[WorkflowEvent]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT event, detail, created_at FROM workflow_events"
                    " WHERE workflow_id = %s ORDER BY id",
                    (workflow_id,),
                )
            ).fetchall()
        return [WorkflowEvent(**row) for row in rows]

    async def for_requester(self, requester: str, *, limit: int = 20) -> list[WorkflowRecord]:
        """The requester's most recent workflows, newest first."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    _SELECT + " WHERE requester = %s ORDER BY created_at DESC LIMIT %s",
                    (requester, limit),
                )
            ).fetchall()
        return [WorkflowRecord(**row) for row in rows]

    async def in_status(
        self, statuses: list[str], *, idle_s: float = 0.0, limit: int = 500
    ) -> list[str]:
        """Workflows in these statuses not updated for `idle_s` seconds, oldest first."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT id FROM workflows WHERE status = ANY(%s)"
                    # LangGraph Server drives its own threads; their checkpoints are not ours.
                    " AND source <> 'langgraph'"
                    " AND updated_at < now() - make_interval(secs => %s)"
                    " ORDER BY updated_at LIMIT %s",
                    (statuses, idle_s, limit),
                )
            ).fetchall()
        return [row["id"] for row in rows]

    async def active_counts(self) -> dict[str, int]:
        """How many workflows are not finished yet, per status (planning, running, ...)."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT status, count(*) AS n FROM workflows"
                    " WHERE status <> ALL(%s) GROUP BY status",
                    (sorted(TERMINAL_STATUSES),),
                )
            ).fetchall()
        return {row["status"]: row["n"] for row in rows}
