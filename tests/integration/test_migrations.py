"""Migrations against a real Postgres: ordered, idempotent, tamper-evident, audit append-only."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from shared.lib.db.database import Database, migrate_database
from shared.lib.db.migrations import MigrationError, load_migrations
from shared.lib.db.pool import open_pool

STATE_DIR = Path(__file__).resolve().parents[2] / "config" / "state"

SCHEMA_SNAPSHOT = """
SELECT table_name, column_name, data_type
  FROM information_schema.columns
 WHERE table_schema = 'public'
 ORDER BY table_name, column_name
"""


async def _migrated(url: str) -> Database:
    database = Database(url, await open_pool(url, max_size=4), load_migrations(STATE_DIR))
    await migrate_database(database)
    return database


def _snapshot(url: str) -> tuple[list[tuple[str, ...]], list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        columns = [tuple(row) for row in conn.execute(SCHEMA_SNAPSHOT).fetchall()]
        versions = conn.execute(
            "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()
    return columns, [tuple(row) for row in versions]


async def test_migrations_apply_once_and_second_run_changes_nothing(
    empty_database_url: str,
) -> None:
    database = await _migrated(empty_database_url)
    first = _snapshot(empty_database_url)
    applied_again = await migrate_database(database)
    await database.pool.close()

    assert applied_again == []
    assert _snapshot(empty_database_url) == first
    tables = {row[0] for row in first[0]}
    assert {
        "approval_requests",
        "approval_actions",
        "pending_approvals",
        "approval_statistics",
        "executions",
        "chat_sessions",
        "chat_messages",
        "checkpoints",
    } <= tables
    assert [row[0] for row in first[1]] == [m.version for m in load_migrations(STATE_DIR)]


async def test_approval_actions_refuse_update_and_delete(empty_database_url: str) -> None:
    database = await _migrated(empty_database_url)
    await database.pool.close()
    with psycopg.connect(empty_database_url, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(
            "INSERT INTO approval_requests (id, workflow_id, risk_level, required_approvals,"
            " allowed_roles, requester, plan, plan_hash, expires_at) VALUES"
            " (gen_random_uuid(), 'wf-1', 'high', 1, '{approver}', 'alice', '[]', 'h',"
            "  now() + interval '1 hour')"
        )
        conn.execute(
            "INSERT INTO approval_actions (approval_id, workflow_id, action, actor)"
            " SELECT id, workflow_id, 'requested', 'alice' FROM approval_requests"
        )
        for statement in (
            "UPDATE approval_actions SET actor = 'mallory'",
            "DELETE FROM approval_actions",
            "TRUNCATE approval_actions",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        row = conn.execute("SELECT actor, action FROM approval_actions").fetchone()
    assert row == {"actor": "alice", "action": "requested"}


async def test_edited_migration_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    for source in STATE_DIR.glob("*.sql"):
        (tmp_path / source.name).write_text(source.read_text())
    database = Database(
        empty_database_url,
        await open_pool(empty_database_url, max_size=2),
        load_migrations(tmp_path),
    )
    await migrate_database(database)
    first = tmp_path / "0001_approval_requests.sql"
    first.write_text(first.read_text() + "\n-- edited\n")
    database.migrations = load_migrations(tmp_path)
    with pytest.raises(MigrationError, match="edited after it was applied"):
        await migrate_database(database)
    await database.pool.close()


def test_gap_in_numbering_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0003_third.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="expected migration 0002"):
        load_migrations(tmp_path)


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        (None, "the migrations folder is missing; AGENT_CONFIG_DIR must hold state/"),
        ({}, "no migrations (NNNN_name.sql) in the folder"),
        ({"0001_first.sql": b"SELECT 1;", "2_second.sql": b""}, "are named NNNN_lower_snake"),
        ({"0001_First.sql": b""}, "are named NNNN_lower_snake"),
        ({"0001_first.sql": "-- caf\u00e9".encode("latin-1")}, "not UTF-8 (byte 0xe9 at offset 6)"),
    ],
)
def test_a_folder_the_service_cannot_run_on_is_refused(
    tmp_path: Path, files: dict[str, bytes] | None, problem: str
) -> None:
    """A missing or empty folder is not "no migrations": the service would start on no schema."""
    state = tmp_path / "state"
    if files is not None:
        state.mkdir()
        for name, content in files.items():
            (state / name).write_bytes(content)
    with pytest.raises(MigrationError, match=re.escape(problem)):
        load_migrations(state)


async def test_a_migration_whose_sql_fails_is_named_and_not_recorded(
    empty_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE second (id int);\nSELEC 1;")
    database = Database(
        empty_database_url,
        await open_pool(empty_database_url, max_size=2),
        load_migrations(tmp_path),
    )
    try:
        with pytest.raises(MigrationError) as caught:
            await migrate_database(database)
    finally:
        await database.pool.close()
    assert str(caught.value) == (
        'migration 0002_broken.sql failed and was not applied: syntax error at or near "SELEC"; '
        "correct it (safe, as it was never applied) and start again"
    )
    with psycopg.connect(empty_database_url) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
        second = conn.execute("SELECT to_regclass('second')").fetchone()
    assert versions == [(1,)]
    assert second == (None,)
