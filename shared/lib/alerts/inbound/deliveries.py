"""Delivery ids already handled (a replay is a duplicate) and the append-only record of
deliveries refused before anything was read from them."""

from __future__ import annotations

from typing import Any

from shared.lib.db.pool import Pool


class DeliveryLog:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def first_time(self, *, source: str, delivery_id: str, event: str) -> bool:
        """Record the delivery id; False when the sender used it before (a replay)."""
        async with self._pool.connection() as conn:
            row = await (
                await conn.execute(
                    "INSERT INTO webhook_deliveries (source, delivery_id, event)"
                    " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING delivery_id",
                    (source, delivery_id, event),
                )
            ).fetchone()
        return row is not None

    async def forget(self, *, source: str, delivery_id: str) -> None:
        """Let the sender's retry through after handling failed."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM webhook_deliveries WHERE source = %s AND delivery_id = %s",
                (source, delivery_id),
            )

    async def rejected(self, *, source: str, delivery_id: str | None, reason: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO webhook_rejections (source, delivery_id, reason) VALUES (%s, %s, %s)",
                (source, delivery_id, reason[:500]),
            )

    async def rejections(
        self, *, source: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT source, delivery_id, reason, received_at FROM webhook_rejections"
                    " WHERE %s::text IS NULL OR source = %s ORDER BY id DESC LIMIT %s",
                    (source, source, limit),
                )
            ).fetchall()
        return [dict(row) for row in rows]
