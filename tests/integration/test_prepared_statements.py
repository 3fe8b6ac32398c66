"""The pool prepares a query once it ran a few times on a connection, unless told not to
(DB_PREPARED_STATEMENTS=false, for transaction poolers); migrations never prepare. Because every
query names its columns, another replica's migration adding a column does not break a prepared
read, while a prepared `SELECT *` does (docs/upstream-limits.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shared.lib.alerts.models import RecoveryDecision
from shared.lib.alerts.store import AlertNotice, AlertStore
from shared.lib.approvals.store import ApprovalStore
from shared.lib.chat.store import ChatStore
from shared.lib.db.database import Database, open_database
from shared.lib.db.pool import PREPARE_AFTER
from shared.lib.inbox.store import InboxStore
from shared.lib.settings import load_settings
from shared.lib.trackers.store import TrackerStore
from shared.lib.workflows.store import WorkflowStore
from tests.conftest import CONFIG_DIR

QUERY = "SELECT count(*) AS n FROM workflows WHERE status = %s"
TABLES = (
    "workflows",
    "approval_requests",
    "approval_actions",
    "alert_workflows",
    "chat_sessions",
    "tracker_outbox",
    "tracker_issues",
)

Read = Callable[[], Awaitable[Any]]


async def _open(database_url: str, tmp_path: Path, **extra: str) -> Database:
    settings = load_settings(
        DATABASE_URL=database_url, AGENT_CONFIG_DIR=CONFIG_DIR, AGENT_DATA_DIR=tmp_path, **extra
    )
    return await open_database(settings)


async def _prepared_count(conn: psycopg.AsyncConnection[Any], like: str) -> int:
    """How many statements this session holds prepared whose text is `like`."""
    row = await (
        await conn.execute(
            "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE %s", (like,)
        )
    ).fetchone()
    assert row is not None
    return int(row["n"])


@pytest.mark.parametrize(("flag", "expected"), [(None, 1), ("true", 1), ("false", 0)])
async def test_a_repeated_query_is_prepared_unless_turned_off(
    database_url: str, tmp_path: Path, flag: str | None, expected: int
) -> None:
    database = await _open(
        database_url, tmp_path, **({"DB_PREPARED_STATEMENTS": flag} if flag else {})
    )
    try:
        async with database.pool.connection() as conn:
            for _ in range(PREPARE_AFTER + 2):
                await conn.execute(QUERY, ("planning",))
            assert await _prepared_count(conn, "%FROM workflows WHERE status%") == expected
    finally:
        await database.close()


async def _reads(database: Database) -> dict[str, Read]:
    """One read of each store whose rows a model holds, over rows made here."""
    pool = database.pool
    workflows, alerts = WorkflowStore(pool), AlertStore(pool)
    chat, trackers = ChatStore(pool), TrackerStore(pool)
    approvals, inbox = ApprovalStore(pool), InboxStore(pool)
    await workflows.create(
        workflow_id="wf-prepared", source="api", requester="alice", request={}, request_id=None
    )
    notice = AlertNotice(
        fingerprint="fp-prepared",
        alertname="DiskFull",
        labels={},
        annotations={},
        starts_at=datetime.now(UTC),
    )
    recorded = await alerts.record_firing(notice, RecoveryDecision(action="ignored", reason="t"))
    session = await chat.create_session(principal="alice")
    await trackers.enqueue(
        tracker="github", fingerprint="fp-prepared", kind="open", title="t", body="b"
    )
    return {
        "workflow": lambda: workflows.get("wf-prepared"),
        "alert": lambda: alerts.get(recorded.record.id),
        "alerts": lambda: alerts.recent(),
        "chat session": lambda: chat.session(session_id=session.id, principal="alice"),
        "outbox": lambda: trackers.outbox(),
        "approvals": lambda: approvals.for_workflow("wf-prepared"),
        "pending": lambda: approvals.list_pending(),
        "tiers": lambda: inbox.statistics(),
    }


async def test_prepared_reads_survive_another_session_adding_columns(
    database_url: str, tmp_path: Path
) -> None:
    database = await _open(database_url, tmp_path)
    try:
        reads = await _reads(database)
        # Enough runs for every pooled connection to prepare each read (the pool rotates them).
        runs = 3 * (PREPARE_AFTER + 1)
        before = {name: [await read() for _ in range(runs)][-1] for name, read in reads.items()}
        async with database.pool.connection() as conn:
            for _ in range(PREPARE_AFTER + 1):  # a read of `*`, prepared the same way
                await conn.execute("SELECT * FROM workflows w WHERE w.id = %s", ("wf-prepared",))
            assert await _prepared_count(conn, "%FROM workflows%WHERE %id = $1") == 2
            with psycopg.connect(database.url, autocommit=True) as other:  # another replica
                for table in TABLES:
                    other.execute(f"ALTER TABLE {table} ADD COLUMN added_later int")  # type: ignore[arg-type]
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="cached plan"):
                await conn.execute("SELECT * FROM workflows w WHERE w.id = %s", ("wf-prepared",))
        after = {name: await read() for name, read in reads.items()}
        assert after == before
    finally:
        await database.close()
