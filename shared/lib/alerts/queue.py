"""Alert storms: a delivery of many alerts is recorded in one transaction and answered at once;
the workflows are started (or the alerts merged into the workflow already recovering the same
target) by a task the engine owns. A row recorded but not processed (the process died) is
claimed again by the recovery sweep, so every alert ends started, merged, or recorded with a
reason. Claims are compare-and-set on `claimed_at`, so a row is processed by one task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from shared.lib.alerts.models import RecoveryDecision
from shared.lib.alerts.store import (
    ALERT_COLUMNS,
    ALERT_LOCK_CLASS,
    ALIASED_ALERT_COLUMNS,
    AlertNotice,
    AlertRecord,
    Recorded,
    firing_row,
)
from shared.lib.db.columns import with_columns
from shared.lib.db.pool import Pool
from shared.lib.workflows.leases import covers

_INSERT = with_columns(
    "INSERT INTO alert_workflows (fingerprint, alertname, action, reason, strategy, target,"
    " environment, labels, annotations, starts_at, notes, source, links, claimed_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    "  jsonb_build_array(jsonb_build_object('at', now(), 'note', %s::text)), %s, %s, now())"
    " RETURNING {alert}",
    alert=ALERT_COLUMNS,
)
_NEWEST = with_columns(
    "SELECT DISTINCT ON (a.fingerprint) {alert}, w.status AS workflow_status"
    " FROM alert_workflows a LEFT JOIN workflows w ON w.id = a.workflow_id"
    " WHERE a.fingerprint = ANY(%s)"
    " ORDER BY a.fingerprint, a.starts_at DESC, a.id DESC",
    alert=ALIASED_ALERT_COLUMNS,
)
_COUNT_REPEATS = with_columns(
    "UPDATE alert_workflows a SET received = a.received + c.n,"
    " last_seen = now() FROM (SELECT unnest(%s::bigint[]) AS id,"
    " unnest(%s::int[]) AS n) c WHERE a.id = c.id RETURNING {alert}",
    alert=ALIASED_ALERT_COLUMNS,
)
_CLAIM = with_columns(
    "UPDATE alert_workflows SET claimed_at = now() WHERE id = %s"
    " AND workflow_id IS NULL AND claimed_at IS NOT DISTINCT FROM %s"
    " RETURNING {alert}",
    alert=ALERT_COLUMNS,
)
_UNPROCESSED = with_columns(
    "SELECT {alert} FROM alert_workflows WHERE action = 'workflow'"
    " AND workflow_id IS NULL AND status = 'firing'"
    " AND coalesce(claimed_at, first_seen) < now() - make_interval(secs => %s)"
    " ORDER BY id LIMIT %s",
    alert=ALERT_COLUMNS,
)


class AlertQueue:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record_many(
        self, items: list[tuple[AlertNotice, RecoveryDecision]]
    ) -> list[Recorded]:
        """Each alert recorded as `AlertStore.record_firing` would, in one transaction: a new
        episode row, or a repeat counted on the row it repeats (Alertmanager's retries)."""
        fingerprints = sorted({notice.fingerprint for notice, _ in items})
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(f))"
                " FROM unnest(%s::text[]) AS f ORDER BY f",
                (ALERT_LOCK_CLASS, fingerprints),
            )
            rows = await (
                await conn.execute(
                    _NEWEST,
                    (fingerprints,),
                )
            ).fetchall()
            newest = {row["fingerprint"]: AlertRecord(**row) for row in rows}
            fresh: list[int] = []
            repeats: dict[int, list[int]] = {}  # row id -> indexes of the alerts repeating it
            chosen: dict[str, int] = {}  # fingerprint -> index inserted by this delivery
            for index, (notice, _) in enumerate(items):
                known = newest.get(notice.fingerprint)
                if notice.fingerprint in chosen:
                    repeats.setdefault(-1 - chosen[notice.fingerprint], []).append(index)
                elif known is not None and (
                    known.starts_at >= notice.starts_at or known.workflow_active
                ):
                    repeats.setdefault(known.id, []).append(index)
                else:
                    chosen[notice.fingerprint] = index
                    fresh.append(index)
            results: dict[int, Recorded] = {}
            inserted: list[dict[str, Any]] = []
            async with conn.cursor() as cursor:
                if fresh:
                    await cursor.executemany(
                        _INSERT, [_insert_params(*items[i]) for i in fresh], returning=True
                    )
                    while True:
                        row = await cursor.fetchone()
                        if row is not None:
                            inserted.append(row)
                        if not cursor.nextset():
                            break
            for index, row in zip(fresh, inserted, strict=True):
                results[index] = Recorded(AlertRecord(**row), fresh=True)
            # A repeat of an alert inserted just now counts on its new row.
            counts: dict[int, int] = {}
            for key, indexes in repeats.items():
                row_id = results[-1 - key].record.id if key < 0 else key
                counts[row_id] = counts.get(row_id, 0) + len(indexes)
            updated: dict[int, AlertRecord] = {}
            if counts:
                for row in await (
                    await conn.execute(
                        _COUNT_REPEATS,
                        (list(counts), list(counts.values())),
                    )
                ).fetchall():
                    updated[row["id"]] = AlertRecord(**row)
            for key, indexes in repeats.items():
                row_id = results[-1 - key].record.id if key < 0 else key
                for index in indexes:
                    results[index] = Recorded(updated[row_id], fresh=False)
        return [results[index] for index in range(len(items))]

    async def claim(self, alert_id: int, *, seen: datetime | None) -> AlertRecord | None:
        """Take the row for processing if nobody took it since `seen`; None when taken."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    _CLAIM,
                    (alert_id, seen),
                )
            ).fetchone()
        return AlertRecord(**row) if row else None

    async def unprocessed(self, *, grace_s: float, limit: int = 1000) -> list[AlertRecord]:
        """Rows whose workflow was to be started but never was, left longer than `grace_s`."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    _UNPROCESSED,
                    (grace_s, limit),
                )
            ).fetchall()
        return [AlertRecord(**row) for row in rows]

    async def claimed_at(self, alert_id: int) -> datetime | None:
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT claimed_at FROM alert_workflows WHERE id = %s", (alert_id,)
                )
            ).fetchone()
        return row["claimed_at"] if row else None

    async def started_for(self, alert_id: int) -> str | None:
        """A workflow already started for this alert (the process died before linking it)."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT id FROM workflows WHERE source = 'alert'"
                    " AND request->'alert'->>'alert_id' = %s ORDER BY created_at LIMIT 1",
                    (str(alert_id),),
                )
            ).fetchone()
        return row["id"] if row else None

    async def lease_owner(
        self, *, environment: str, target: str, operations: str
    ) -> tuple[str, Any] | None:
        """The live workflow holding the target's lease for operations that cover these
        (`covers`), and its approval id: an alert for the same recovery merges into it without
        a workflow."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT w.id, w.approval_id, l.operations FROM target_leases l"
                    " JOIN workflows w ON w.id = l.workflow_id"
                    " WHERE l.environment = %s AND l.target = %s"
                    " AND l.expires_at > now() AND w.status IN ('planning',"
                    " 'awaiting_approval', 'running')",
                    (environment, target),
                )
            ).fetchone()
        if row is None or not covers(row["operations"], operations):
            return None
        return row["id"], row["approval_id"]

    async def merge_into(self, owner: str, *, alert_id: int, requester: str, source: str) -> None:
        """Tell the owner (its timeline) that an alert's recovery was merged into it."""
        detail = {"alert_id": alert_id, "requester": requester, "source": source}
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO workflow_events (workflow_id, event, detail)"
                " VALUES (%s, 'merged', %s)",
                (owner, Jsonb(detail)),
            )


def _insert_params(notice: AlertNotice, decision: RecoveryDecision) -> tuple[object, ...]:
    note = (
        f"strategy '{decision.strategy}' chose a recovery plan; queued for its workflow"
        if decision.action == "workflow"
        else f"{decision.action}: {decision.reason}"
    )
    return firing_row(notice, decision, note=note)
