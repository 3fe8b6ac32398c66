"""A workflow row update commits only once it has answered: a process killed while its update
waits on a row lock leaves neither the new values nor the timeline event behind, and a process
that lives sees both. Real processes, a real row lock, SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from shared.lib.db.database import open_database
from shared.lib.settings import load_settings
from shared.lib.workflows.store import WorkflowStore
from tests.conftest import CONFIG_DIR
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = "wf-update"
UPDATE = textwrap.dedent(f"""
    import asyncio, os
    from shared.lib.db.pool import open_pool
    from shared.lib.workflows.store import WorkflowStore

    async def main():
        pool = await open_pool(os.environ["DATABASE_URL"], max_size=2)
        await WorkflowStore(pool).update(
            "{WORKFLOW}", status="running", event="executing", detail={{"by": "child"}}
        )
        await pool.close()

    asyncio.run(main())
""")


async def _prepare(url: str, tmp_path: Path) -> None:
    settings = load_settings(DATABASE_URL=url, AGENT_CONFIG_DIR=CONFIG_DIR, AGENT_DATA_DIR=tmp_path)
    database = await open_database(settings)
    try:
        await WorkflowStore(database.pool).create(
            workflow_id=WORKFLOW, source="api", requester="alice", request={}, request_id=None
        )
    finally:
        await database.close()


def _state(url: str) -> tuple[str, list[str]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT status FROM workflows WHERE id = %s", (WORKFLOW,)).fetchone()
        events = conn.execute(
            "SELECT event FROM workflow_events WHERE workflow_id = %s ORDER BY id", (WORKFLOW,)
        ).fetchall()
    assert row is not None
    return row["status"], [e["event"] for e in events]


def _update_sessions(url: str, *, waiting_on_a_lock: bool = False) -> int:
    """Other sessions running a workflow row update (only those waiting on a lock)."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE '%%UPDATE workflows%%' AND pid <> pg_backend_pid()"
            " AND (NOT %s OR wait_event_type = 'Lock')",
            (waiting_on_a_lock,),
        ).fetchone()
    assert row is not None
    return int(row["n"])


def _update_in_child(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", UPDATE], env=env, cwd=ROOT)


def test_an_update_killed_while_it_waits_on_a_row_lock_leaves_nothing(
    database_url: str, tmp_path: Path
) -> None:
    asyncio.run(_prepare(database_url, tmp_path))
    with psycopg.connect(database_url) as holder:  # one open transaction holds the row lock
        holder.execute("SELECT id FROM workflows WHERE id = %s FOR NO KEY UPDATE", (WORKFLOW,))
        child = _update_in_child(database_url)
        try:
            wait_for(
                lambda: _update_sessions(database_url, waiting_on_a_lock=True),
                until=lambda n: n == 1,
                what="the child's update to wait on the row lock",
            )
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        holder.rollback()  # the lock frees: the orphaned statement runs now
    wait_for(
        lambda: _update_sessions(database_url),
        until=lambda n: n == 0,
        what="the killed process's session to end",
    )
    assert _state(database_url) == ("planning", ["received"])


def test_an_update_that_answers_is_committed(database_url: str, tmp_path: Path) -> None:
    asyncio.run(_prepare(database_url, tmp_path))
    child = _update_in_child(database_url)
    assert child.wait(timeout=60) == 0
    assert _state(database_url) == ("running", ["received", "executing"])
