"""The execution ledger: a row per mutating operation, written before it runs.

The idempotency key is deterministic (workflow, approval round, step), so a re-run of the
execute node finds the row: a finished one is reused, a started-but-unfinished one means the
process died mid-operation and is marked `outcome_unknown` for a human, never re-run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from shared.lib.db.pool import Pool
from shared.lib.execution.models import ExecutionResult


@dataclass(frozen=True)
class LedgerEntry:
    key: str
    status: str
    result: dict[str, Any] | None
    fresh: bool
    """True when this call wrote the row: the operation has not run yet."""


class ExecutionLedger:
    def __init__(self, pool: Pool, *, owner: str) -> None:
        self._pool = pool
        self._owner = owner

    async def begin(
        self,
        *,
        key: str,
        workflow_id: str,
        step: int,
        operation: str,
        target: str,
        environment: str | None,
        params: dict[str, Any],
        mutates: bool,
    ) -> LedgerEntry:
        async with self._pool.connection() as conn:
            inserted = await (
                await conn.execute(
                    "INSERT INTO executions (idempotency_key, workflow_id, step, operation,"
                    " target, environment, params, owner, mutates)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING status",
                    (
                        key,
                        workflow_id,
                        step,
                        operation,
                        target,
                        environment,
                        Jsonb(params),
                        self._owner,
                        mutates,
                    ),
                )
            ).fetchone()
            if inserted is not None:
                return LedgerEntry(key, "started", None, fresh=True)
            row = await (
                await conn.execute(
                    "SELECT status, result FROM executions WHERE idempotency_key = %s", (key,)
                )
            ).fetchone()
        assert row is not None
        return LedgerEntry(key, row["status"], row["result"], fresh=False)

    async def skip(self, key: str, *, result: dict[str, Any]) -> None:
        """A conditional step whose condition did not hold: its row (begun) says so, with why."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE executions SET status = 'skipped', result = %s, finished_at = now()"
                " WHERE idempotency_key = %s AND status = 'started'",
                (Jsonb(result), key),
            )

    async def finish(self, key: str, result: ExecutionResult) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE executions SET status = %s, result = %s, executor = %s,"
                " finished_at = now() WHERE idempotency_key = %s AND status = 'started'",
                (
                    result.status.value,
                    Jsonb(result.model_dump(mode="json")),
                    result.invocation.kind,
                    key,
                ),
            )

    async def mark_outcome_unknown(self, key: str, *, reason: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE executions SET status = 'outcome_unknown', result = %s,"
                " finished_at = now() WHERE idempotency_key = %s AND status = 'started'",
                (Jsonb({"reason": reason}), key),
            )

    async def recent_mutations(self, *, target: str, environment: str | None, window_s: int) -> int:
        """How many mutating operations touched the target lately (the flap breaker's input)."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT count(*) AS n FROM executions WHERE target = %s AND mutates"
                    " AND environment IS NOT DISTINCT FROM %s"
                    " AND started_at > now() - make_interval(secs => %s)",
                    (target, environment, window_s),
                )
            ).fetchone()
        return int(row["n"]) if row else 0

    async def for_workflow(self, workflow_id: str) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            return await (
                await conn.execute(
                    "SELECT idempotency_key, step, operation, target, environment, status,"
                    " started_at, finished_at FROM executions WHERE workflow_id = %s"
                    " ORDER BY step, id",
                    (workflow_id,),
                )
            ).fetchall()
