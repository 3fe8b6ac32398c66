"""One owner per target: the lease a workflow takes on each (environment, target) its plan
mutates, from its gate until it ends. A second workflow wanting the same operation, with the
same parameters, on a leased target is merged into the owner (its requester and source recorded
on the owner and its approval, nothing runs twice); one wanting other work waits for the
release. Reads never take a lease. A lease past its time limit, or whose workflow has ended,
counts as released (the sweeper clears it: `target_recovery`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from shared.lib.db.pool import Pool, implicit_transaction
from shared.lib.planning.models import PlannedOperation
from shared.lib.workflows.store import TERMINAL_STATUSES

# How long a lease holds without its workflow ending: longer than any approval waits.
LEASE_TTL_S = 7 * 24 * 3600.0

# Marks an operation the plan runs only if an earlier step ended some way (`restart?`).
CONDITIONAL = "?"
# Joins an operation's name to the digest of its parameters (`run_command#1f0c...`).
PARAMS = "#"

# A lease whose workflow has ended holds nothing, for a claim and for `holds` alike: a run
# killed between writing its final status and releasing its leases leaves them behind.
_ENDED = sorted(TERMINAL_STATUSES)


def operation_key(name: str, params: Mapping[str, Any]) -> str:
    """An operation as a lease compares it: its name and, when it has any, its parameters. A
    `run_command` of another argv, or a restart with another timeout, is not the same work: a
    request for it waits for the owner instead of merging into it and never running."""
    if not params:
        return name
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return f"{name}{PARAMS}{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def lease_text(steps: Iterable[PlannedOperation]) -> str:
    """What a lease records of these mutating steps on one target: `operations_text` of each
    step's `operation_key`, marked when it runs only on a condition. The graph's claim and the
    storm's merge both read leases through this, so they compare the same way."""
    return operations_text(
        (operation_key(s.operation, s.params), s.when is not None) for s in steps
    )


def operations_text(operations: Iterable[tuple[str, bool]]) -> str:
    """What a plan runs on one target as its lease records it: the sorted operation names, a
    conditional one marked `restart?` (one run both ways counts as unconditional)."""
    names: dict[str, bool] = {}
    for name, conditional in operations:
        names[name] = names.get(name, True) and conditional
    return ",".join(f"{name}{CONDITIONAL if names[name] else ''}" for name in sorted(names))


def covers(held: str, wanted: str) -> bool:
    """Whether the owner's operations on a target do what another request wants there: the
    same operations, and each the request runs unconditionally run unconditionally by the
    owner too. So an alert's `restart` only if a health check fails merges into an operator's
    restart, but an operator's restart does not merge into an alert's conditional one (a
    healthy service would skip it): it waits for it instead."""
    owner, request = _parsed(held), _parsed(wanted)
    if owner.keys() != request.keys():
        return False
    return all(owner[name] <= request[name] for name in request)


def _parsed(text: str) -> dict[str, bool]:
    """name -> conditional; a lease taken before conditions were recorded reads as all
    unconditional."""
    names = (part for part in text.split(",") if part)
    return {name.rstrip(CONDITIONAL): name.endswith(CONDITIONAL) for name in names}


@dataclass(frozen=True)
class Claim:
    """What claiming a plan's targets came to: owned (go on), merged into `owner`, or wait."""

    outcome: Literal["owned", "merged", "wait"]
    owner: str | None = None
    target: str | None = None


class TargetLeases:
    def __init__(self, pool: Pool, *, ttl_s: float = LEASE_TTL_S) -> None:
        self._pool = pool
        self._ttl_s = ttl_s

    async def claim(
        self,
        *,
        workflow_id: str,
        requester: str,
        source: str,
        targets: dict[tuple[str, str], str],
    ) -> Claim:
        """Take every (environment, target) -> operations lease at once, or none: merged into
        the owner when it holds them all and its operations cover these (`covers`), else wait
        for it."""
        async with implicit_transaction(self._pool) as conn:
            for environment, target in sorted(targets):  # one order: no deadlock between claims
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('lease:' || %s || '/' || %s))",
                    (environment, target),
                )
            held = {}
            for environment, target in targets:
                row = await (
                    await conn.execute(
                        "SELECT l.workflow_id, l.operations FROM target_leases l"
                        " JOIN workflows w ON w.id = l.workflow_id"
                        " WHERE l.environment = %s AND l.target = %s AND l.expires_at > now()"
                        " AND l.workflow_id <> %s AND w.status <> ALL(%s)",
                        (environment, target, workflow_id, _ENDED),
                    )
                ).fetchone()
                if row is not None:
                    held[(environment, target)] = (row["workflow_id"], row["operations"])
            if held:
                owners = {owner for owner, _ in held.values()}
                (environment, target), (owner, _) = sorted(held.items())[0]
                same = len(owners) == 1 and len(held) == len(targets)
                same = same and all(covers(held[key][1], ops) for key, ops in targets.items())
                if not same:
                    return Claim("wait", owner=owner, target=f"{environment}/{target}")
                await self._merge(conn, workflow_id, owner, requester=requester, source=source)
                return Claim("merged", owner=owner, target=f"{environment}/{target}")
            for (environment, target), operations in targets.items():
                await conn.execute(
                    "INSERT INTO target_leases (environment, target, workflow_id, operations,"
                    " expires_at) VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))"
                    " ON CONFLICT (environment, target) DO UPDATE SET workflow_id ="
                    " excluded.workflow_id, operations = excluded.operations,"
                    " taken_at = now(), expires_at = excluded.expires_at",
                    (environment, target, workflow_id, operations, self._ttl_s),
                )
        return Claim("owned")

    async def _merge(
        self,
        conn: AsyncConnection[DictRow],
        workflow_id: str,
        owner: str,
        *,
        requester: str,
        source: str,
    ) -> None:
        await conn.execute(
            "INSERT INTO workflow_merges (workflow_id, owner_id, requester, source)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (workflow_id) DO NOTHING",
            (workflow_id, owner, requester, source),
        )
        await conn.execute(
            "UPDATE workflows SET status = 'merged', merged_into = %s,"
            " finished_at = coalesce(finished_at, now()), updated_at = now() WHERE id = %s",
            (owner, workflow_id),
        )
        detail = {"workflow_id": workflow_id, "requester": requester, "source": source}
        await conn.execute(
            "INSERT INTO workflow_events (workflow_id, event, detail) VALUES (%s, 'merged', %s)",
            (owner, Jsonb(detail)),
        )
        await conn.execute(
            "INSERT INTO workflow_events (workflow_id, event, detail)"
            " VALUES (%s, 'merged_into', %s)",
            (workflow_id, Jsonb({"owner": owner})),
        )
        # Read the owner's approval under the lock name_approval takes: either this merge sees
        # the approval and notes itself, or the owner's naming (after it) sees this merge.
        await _lock_followers(conn, owner)
        row = await (
            await conn.execute("SELECT approval_id FROM workflows WHERE id = %s", (owner,))
        ).fetchone()
        if row is not None and row["approval_id"] is not None:
            await _note_followers(conn, owner, row["approval_id"])

    async def name_approval(self, owner: str, approval_id: UUID) -> None:
        """The owner's row names its approval, and every request merged into it so far goes on
        that approval (once), for the approver: one transaction, under the lock a merge takes."""
        async with implicit_transaction(self._pool) as conn:
            await _lock_followers(conn, owner)
            await conn.execute(
                "UPDATE workflows SET approval_id = %s, updated_at = now() WHERE id = %s",
                (approval_id, owner),
            )
            await _note_followers(conn, owner, approval_id)

    async def finish(self, workflow_id: str, status: str) -> int:
        """The owner ended with `status`: free its leases and give every request merged into
        it an `owner_finished` event, in one transaction and once (a follower already told is
        not told again), so the run's report and the sweeper finishing for a run killed before
        it released (`ended_owners`) may both call it. Returns how many leases it freed."""
        async with implicit_transaction(self._pool) as conn:
            await _lock_followers(conn, workflow_id)  # one finisher at a time, with merges
            row = await (
                await conn.execute(
                    "WITH freed AS (DELETE FROM target_leases WHERE workflow_id = %s"
                    " RETURNING 1), told AS (INSERT INTO workflow_events (workflow_id, event,"
                    " detail) SELECT m.workflow_id, 'owner_finished',"
                    " jsonb_build_object('owner', m.owner_id, 'status', %s::text)"
                    " FROM workflow_merges m WHERE m.owner_id = %s AND NOT EXISTS (SELECT 1"
                    " FROM workflow_events e WHERE e.workflow_id = m.workflow_id"
                    " AND e.event = 'owner_finished' AND e.detail->>'owner' = m.owner_id)"
                    " ORDER BY m.created_at RETURNING 1)"
                    " SELECT count(*) AS n FROM freed",
                    (workflow_id, status, workflow_id),
                )
            ).fetchone()
        return int(row["n"]) if row else 0

    async def ended_owners(self, *, limit: int = 100) -> list[tuple[str, str]]:
        """(workflow id, status) of workflows that ended but still hold a lease: their run was
        killed between its final status and its release."""
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT DISTINCT w.id, w.status FROM target_leases l"
                    " JOIN workflows w ON w.id = l.workflow_id WHERE w.status = ANY(%s)"
                    " LIMIT %s",
                    (_ENDED, limit),
                )
            ).fetchall()
        return [(row["id"], row["status"]) for row in rows]

    async def release_expired(self) -> int:
        async with self._pool.connection() as conn:
            cursor = await conn.execute("DELETE FROM target_leases WHERE expires_at <= now()")
        return cursor.rowcount

    async def holds(self, workflow_id: str) -> bool:
        """Whether the workflow holds a lease a claim would respect: in time, and its owner
        not ended (as `claim` reads it)."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT 1 FROM target_leases l JOIN workflows w ON w.id = l.workflow_id"
                    " WHERE l.workflow_id = %s AND l.expires_at > now()"
                    " AND w.status <> ALL(%s) LIMIT 1",
                    (workflow_id, _ENDED),
                )
            ).fetchone()
        return row is not None


async def _lock_followers(conn: AsyncConnection[DictRow], owner: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('followers:' || %s))", (owner,))


async def _note_followers(conn: AsyncConnection[DictRow], owner: str, approval_id: UUID) -> None:
    await conn.execute(
        "INSERT INTO approval_actions (approval_id, workflow_id, action, actor, details)"
        " SELECT %s, m.owner_id, 'merged', m.requester,"
        " jsonb_build_object('workflow_id', m.workflow_id, 'source', m.source)"
        " FROM workflow_merges m WHERE m.owner_id = %s AND NOT EXISTS (SELECT 1 FROM"
        " approval_actions a WHERE a.approval_id = %s AND a.action = 'merged'"
        " AND a.details->>'workflow_id' = m.workflow_id) ORDER BY m.created_at",
        (approval_id, owner, approval_id),
    )
