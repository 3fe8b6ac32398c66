"""Alert records: one row per firing episode of an alert (fingerprint + startsAt), what the
agent did about it, how often Alertmanager repeated it and when it resolved."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field

from shared.lib.alerts.models import RecoveryDecision
from shared.lib.db.columns import columns, with_columns
from shared.lib.db.pool import Pool
from shared.lib.workflows.store import TERMINAL_STATUSES

_SOURCE_NAMES = {"alertmanager": "Alertmanager", "sentry": "Sentry", "github": "GitHub"}

# Two-int advisory locks live in their own key space; this class id keeps ours apart.
ALERT_LOCK_CLASS = 7_240_007


class AlertRecord(BaseModel):
    id: int
    fingerprint: str
    alertname: str
    status: str
    action: str
    reason: str | None = None
    strategy: str | None = None
    target: str | None = None
    environment: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    workflow_id: str | None = None
    approval_id: UUID | None = None
    received: int
    starts_at: datetime
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None = None
    notes: list[dict[str, Any]] = Field(default_factory=list)
    workflow_status: str | None = None
    source: str = "alertmanager"
    links: dict[str, str] = Field(default_factory=dict)
    claimed_at: datetime | None = None
    """When a task last took the row to start its workflow (storms, recovery)."""

    @property
    def workflow_active(self) -> bool:
        """A workflow is being started or has not finished."""
        if self.action != "workflow":
            return False
        return self.workflow_id is None or self.workflow_status not in TERMINAL_STATUSES


# A row's columns; its workflow's status comes from a join.
ALERT_COLUMNS = columns(AlertRecord, omit=("workflow_status",))
ALIASED_ALERT_COLUMNS = columns(AlertRecord, alias="a", omit=("workflow_status",))
SELECT_WITH_STATUS = with_columns(
    "SELECT {alert}, w.status AS workflow_status FROM alert_workflows a"
    " LEFT JOIN workflows w ON w.id = a.workflow_id",
    alert=ALIASED_ALERT_COLUMNS,
)
_INSERT_FIRING = with_columns(
    "INSERT INTO alert_workflows (fingerprint, alertname, action, reason,"
    " strategy, target, environment, labels, annotations, starts_at, notes, source, links)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    "  jsonb_build_array(jsonb_build_object('at', now(), 'note', %s::text)), %s, %s)"
    " RETURNING {alert}",
    alert=ALERT_COLUMNS,
)
_INSERT_RESOLVED = with_columns(
    "INSERT INTO alert_workflows (fingerprint, alertname, status, action,"
    " reason, labels, annotations, starts_at, resolved_at, source, links)"
    " VALUES (%s, %s, 'resolved', 'ignored', %s, %s, %s, %s, coalesce(%s, now()), %s, %s)"
    " ON CONFLICT (fingerprint, starts_at) DO UPDATE"
    "  SET received = alert_workflows.received + 1, last_seen = now()"
    " RETURNING {alert}, (xmax = 0) AS inserted",
    alert=ALERT_COLUMNS,
)
_SET_RESOLVED = with_columns(
    "UPDATE alert_workflows SET status = 'resolved', received = received + 1,"
    " last_seen = now(), resolved_at = coalesce(%s, now()),"
    " notes = notes || jsonb_build_array(jsonb_build_object('at', now(), 'note', %s::text))"
    " WHERE id = %s RETURNING {alert}",
    alert=ALERT_COLUMNS,
)
_SET_WORKFLOW = with_columns(
    "UPDATE alert_workflows SET workflow_id = %s, approval_id = %s,"
    " notes = notes || jsonb_build_array(jsonb_build_object('at', now(), 'note', %s::text))"
    " WHERE id = %s RETURNING {alert}",
    alert=ALERT_COLUMNS,
)
_COUNT_REPEAT = with_columns(
    "UPDATE alert_workflows SET received = received + 1, last_seen = now(),"
    " notes = CASE WHEN %s::text IS NULL THEN notes ELSE notes"
    "  || jsonb_build_array(jsonb_build_object('at', now(), 'note', %s::text)) END"
    " WHERE id = %s RETURNING {alert}",
    alert=ALERT_COLUMNS,
)


@dataclass(frozen=True)
class AlertNotice:
    """One alert of a notification, as the store keeps it."""

    fingerprint: str
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None = None
    source: str = "alertmanager"
    links: dict[str, str] = field(default_factory=dict)
    """Where a person sees the alert at its source (Sentry issue, GitHub run), by name."""


@dataclass(frozen=True)
class Recorded:
    record: AlertRecord
    fresh: bool
    """True when this notification created the row (firing) or resolved it (resolved)."""


class AlertStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record_firing(self, notice: AlertNotice, decision: RecoveryDecision) -> Recorded:
        """A new episode row carrying `decision`, or a repeat counted on the current one.

        A repeat is the same episode again, or a new one while the last one's workflow is still
        active: one alert never has two active workflows. Replicas serialize per fingerprint.
        """
        async with self._pool.connection() as conn, conn.transaction():
            await _lock(conn, notice.fingerprint)
            newest = await _newest(conn, notice.fingerprint)
            if newest is not None and (
                newest.starts_at >= notice.starts_at or newest.workflow_active
            ):
                # The same episode again, an older one redelivered, or a new one too soon.
                episode = await _episode(conn, notice.fingerprint, notice.starts_at)
                note = None
                if episode is None or episode.starts_at != notice.starts_at:
                    note = "fired again while its workflow was still active; counted, not started"
                row_id = (episode or newest).id
                return Recorded(await _repeat(conn, row_id, note=note), fresh=False)
            row = await (
                await conn.execute(
                    _INSERT_FIRING,
                    firing_row(notice, decision, note=_first_note(decision)),
                )
            ).fetchone()
        assert row is not None
        return Recorded(AlertRecord(**row), fresh=True)

    async def record_resolved(self, notice: AlertNotice) -> Recorded:
        """Mark the alert's current episode resolved; a repeat or an unknown alert is recorded."""
        async with self._pool.connection() as conn, conn.transaction():
            await _lock(conn, notice.fingerprint)
            latest = await _episode(conn, notice.fingerprint, notice.starts_at)
            if latest is not None and latest.status == "resolved":
                return Recorded(await _repeat(conn, latest.id, note=None), fresh=False)
            if latest is None:
                row = await (
                    await conn.execute(
                        _INSERT_RESOLVED,
                        (
                            notice.fingerprint,
                            notice.alertname,
                            "resolved before the agent saw it firing; nothing to do",
                            Jsonb(notice.labels),
                            Jsonb(notice.annotations),
                            notice.starts_at,
                            notice.ends_at,
                            notice.source,
                            Jsonb(notice.links),
                        ),
                    )
                ).fetchone()
                assert row is not None
                return Recorded(AlertRecord(**row), fresh=bool(row["inserted"]))
            row = await (
                await conn.execute(
                    _SET_RESOLVED,
                    (
                        notice.ends_at,
                        f"{_SOURCE_NAMES.get(notice.source, notice.source)} reported it resolved",
                        latest.id,
                    ),
                )
            ).fetchone()
        assert row is not None
        return Recorded(AlertRecord(**row), fresh=True)

    async def attach_workflow(
        self, alert_id: int, *, workflow_id: str, approval_id: UUID | None, note: str
    ) -> AlertRecord:
        """Link the workflow started for the alert; the answer says if it resolved meanwhile."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    _SET_WORKFLOW,
                    (workflow_id, approval_id, note, alert_id),
                )
            ).fetchone()
        assert row is not None
        return AlertRecord(**row)

    async def is_firing(self, fingerprint: str) -> bool:
        """Whether the alert's newest episode is still firing (a recovery may resolve it)."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT status FROM alert_workflows WHERE fingerprint = %s"
                    " ORDER BY starts_at DESC, id DESC LIMIT 1",
                    (fingerprint,),
                )
            ).fetchone()
        return row is not None and row["status"] == "firing"

    async def others_firing(self, workflow_id: str, *, besides: int) -> int:
        """How many other alerts this workflow answers still fire: those linked to it (a
        storm's, merged without a workflow) and those whose own workflow merged into it."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT count(*) AS n FROM alert_workflows a"
                    " LEFT JOIN workflows w ON w.id = a.workflow_id"
                    " WHERE (a.workflow_id = %s OR w.merged_into = %s)"
                    " AND a.status = 'firing' AND a.id <> %s",
                    (workflow_id, workflow_id, besides),
                )
            ).fetchone()
        return int(row["n"]) if row else 0

    async def all_resolved(self, workflow_id: str, *, alert_id: int) -> bool:
        """Whether every alert the workflow answers has resolved: its own (`alert_id`, linked
        or not yet), those linked to it and those whose own workflow merged into it. The same
        alerts `others_firing` counts; a resolution is committed with its row, so a workflow
        that reads this at its gates sees every resolution recorded before, crash or not."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT count(*) AS n, count(*) FILTER (WHERE a.status = 'firing') AS firing"
                    " FROM alert_workflows a LEFT JOIN workflows w ON w.id = a.workflow_id"
                    " WHERE a.id = %s OR a.workflow_id = %s OR w.merged_into = %s",
                    (alert_id, workflow_id, workflow_id),
                )
            ).fetchone()
        return row is not None and int(row["n"]) > 0 and int(row["firing"]) == 0

    async def note(self, alert_id: int, note: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE alert_workflows SET notes = notes"
                " || jsonb_build_array(jsonb_build_object('at', now(), 'note', %s::text))"
                " WHERE id = %s",
                (note, alert_id),
            )

    async def forget(self, alert_id: int) -> None:
        """Drop a row whose workflow could not be started, so a redelivery can start it."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM alert_workflows WHERE id = %s AND workflow_id IS NULL", (alert_id,)
            )

    async def get(self, alert_id: int) -> AlertRecord | None:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    SELECT_WITH_STATUS + " WHERE a.id = %s",
                    (alert_id,),
                )
            ).fetchone()
        return AlertRecord(**row) if row else None

    async def recent(
        self, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AlertRecord]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    SELECT_WITH_STATUS + " WHERE %s::text IS NULL OR a.status = %s"
                    " ORDER BY a.last_seen DESC, a.id DESC LIMIT %s OFFSET %s",
                    (status, status, limit, offset),
                )
            ).fetchall()
        return [AlertRecord(**row) for row in rows]


async def _lock(conn: AsyncConnection[DictRow], fingerprint: str) -> None:
    await conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (ALERT_LOCK_CLASS, fingerprint)
    )


async def _episode(
    conn: AsyncConnection[DictRow], fingerprint: str, starts_at: datetime
) -> AlertRecord | None:
    """The row of the episode that started at `starts_at`, or of the last one before it."""
    row = await (
        await conn.execute(
            SELECT_WITH_STATUS + " WHERE a.fingerprint = %s AND a.starts_at <= %s"
            " ORDER BY a.starts_at DESC, a.id DESC LIMIT 1",
            (fingerprint, starts_at),
        )
    ).fetchone()
    return AlertRecord(**row) if row else None


async def _newest(conn: AsyncConnection[DictRow], fingerprint: str) -> AlertRecord | None:
    row = await (
        await conn.execute(
            SELECT_WITH_STATUS
            + " WHERE a.fingerprint = %s ORDER BY a.starts_at DESC, a.id DESC LIMIT 1",
            (fingerprint,),
        )
    ).fetchone()
    return AlertRecord(**row) if row else None


async def _repeat(
    conn: AsyncConnection[DictRow], alert_id: int, *, note: str | None
) -> AlertRecord:
    row = await (
        await conn.execute(
            _COUNT_REPEAT,
            (note, note, alert_id),
        )
    ).fetchone()
    assert row is not None
    return AlertRecord(**row)


def _first_note(decision: RecoveryDecision) -> str:
    if decision.action == "workflow":
        return f"strategy '{decision.strategy}' chose a recovery plan; starting its workflow"
    return f"{decision.action}: {decision.reason}"


def firing_row(notice: AlertNotice, decision: RecoveryDecision, *, note: str) -> tuple[object, ...]:
    """The values of a new `alert_workflows` row, in the order its INSERTs name the columns."""
    return (
        notice.fingerprint,
        notice.alertname,
        decision.action,
        decision.reason,
        decision.strategy,
        decision.target,
        decision.environment,
        Jsonb(notice.labels),
        Jsonb(notice.annotations),
        notice.starts_at,
        note,
        notice.source,
        Jsonb(notice.links),
    )
