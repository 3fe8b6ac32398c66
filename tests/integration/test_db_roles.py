"""The least-privilege split of deploy/postgres/roles.sql on a real server: the owner migrates,
the agent's role runs the service with DML only and cannot reach the append-only audit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.db.database import open_database
from shared.lib.db.migrations import MigrationError
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, auth, orchestrate, wait_for, workflow
from tests.integration.service_support import fake_executors
from tests.testbed.db_roles import SplitRoles, apply_roles_script
from tests.testbed.postgres import PostgresServer


def agent_refused(agent_url: str, statement: str) -> psycopg.Error:
    """Run `statement` as the agent's role; it must fail. The error it failed with."""
    with (
        psycopg.connect(agent_url, autocommit=True) as conn,
        pytest.raises(psycopg.Error) as refused,
    ):
        conn.execute(statement.encode())
    return refused.value


def run_one_approved_workflow(split_roles: SplitRoles, tmp_path: Path) -> str:
    """Serve as the agent's role (migrating as the owner), and run a gated workflow."""
    settings = load_settings(
        DATABASE_URL=split_roles.agent_url,
        MIGRATION_DATABASE_URL=split_roles.owner_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
    )
    with TestClient(create_app(settings, executors=fake_executors())) as api:
        started = orchestrate(api, {"request": "restart web on prod"})
        assert started["status"] == "awaiting_approval", started
        approved = api.post(f"/approve/{started['approval_id']}", headers=auth("bob"))
        assert approved.status_code == 202, approved.text
        done = wait_for(
            lambda: workflow(api, started["workflow_id"]),
            until=lambda w: w["status"] in ("completed", "failed"),
            what="workflow finished",
        )
        assert done["status"] == "completed", done
        assert api.get("/ready").status_code == 200
    return str(started["workflow_id"])


def test_agent_role_runs_workflows_but_cannot_touch_the_audit(
    split_roles: SplitRoles, tmp_path: Path
) -> None:
    workflow_id = run_one_approved_workflow(split_roles, tmp_path)

    with psycopg.connect(split_roles.agent_url) as conn:
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        audit = conn.execute(
            "SELECT action, actor FROM approval_actions WHERE workflow_id = %s ORDER BY id",
            (workflow_id,),
        ).fetchall()
        checkpoints = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
    assert owners == [(split_roles.owner,)]  # ours and LangGraph's tables: the owner's
    assert audit == [("requested", "alice"), ("approve", "bob")]
    assert checkpoints is not None and checkpoints[0] > 0  # the saver wrote as the agent

    refusals: dict[str, Callable[[], psycopg.Error]] = {
        "update": lambda: agent_refused(
            split_roles.agent_url, "UPDATE approval_actions SET actor = 'mallory'"
        ),
        "delete": lambda: agent_refused(split_roles.agent_url, "DELETE FROM approval_actions"),
        "truncate": lambda: agent_refused(split_roles.agent_url, "TRUNCATE approval_actions"),
        "replica": lambda: agent_refused(
            split_roles.agent_url, "SET session_replication_role = replica"
        ),
        "disable": lambda: agent_refused(
            split_roles.agent_url, "ALTER TABLE approval_actions DISABLE TRIGGER ALL"
        ),
        "drop trigger": lambda: agent_refused(
            split_roles.agent_url, "DROP TRIGGER approval_actions_append_only ON approval_actions"
        ),
        "drop function": lambda: agent_refused(
            split_roles.agent_url, "DROP FUNCTION approval_actions_refuse_change() CASCADE"
        ),
        "create": lambda: agent_refused(split_roles.agent_url, "CREATE TABLE shadow (a int)"),
    }
    for what, attempt in refusals.items():
        error = attempt()
        assert isinstance(error, psycopg.errors.InsufficientPrivilege), (what, error)

    with psycopg.connect(split_roles.owner_url) as conn:
        triggers = conn.execute(
            "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'approval_actions'::regclass"
            " AND NOT tgisinternal ORDER BY tgname"
        ).fetchall()
        still = conn.execute(
            "SELECT action, actor FROM approval_actions WHERE workflow_id = %s ORDER BY id",
            (workflow_id,),
        ).fetchall()
    assert triggers == [
        ("approval_actions_append_only", "O"),
        ("approval_actions_no_truncate", "O"),
    ]
    assert still == audit


async def test_agent_role_starts_on_a_current_schema_and_is_told_to_migrate_otherwise(
    split_roles: SplitRoles, tmp_path: Path
) -> None:
    as_agent = load_settings(
        DATABASE_URL=split_roles.agent_url, AGENT_CONFIG_DIR=CONFIG_DIR, AGENT_DATA_DIR=tmp_path
    )
    with pytest.raises(MigrationError) as refused:
        await open_database(as_agent)
    assert split_roles.agent in str(refused.value)
    assert "MIGRATION_DATABASE_URL" in str(refused.value)

    as_owner = load_settings(
        DATABASE_URL=split_roles.owner_url, AGENT_CONFIG_DIR=CONFIG_DIR, AGENT_DATA_DIR=tmp_path
    )
    await (await open_database(as_owner)).close()  # `devops-agent db init` as the owner

    database = await open_database(as_agent)  # current schema: no DDL, so the agent may start
    try:
        async with database.pool.connection() as conn:
            row = await (await conn.execute("SELECT current_user AS who")).fetchone()
        assert row is not None and row["who"] == split_roles.agent
    finally:
        await database.close()


def test_roles_script_is_safe_to_run_again(
    split_roles: SplitRoles, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    as_owner = load_settings(
        DATABASE_URL=split_roles.owner_url, AGENT_CONFIG_DIR=CONFIG_DIR, AGENT_DATA_DIR=tmp_path
    )
    with TestClient(create_app(as_owner, executors=fake_executors())):
        pass  # migrated by the owner
    apply_roles_script(postgres_server.admin_url, split_roles)  # again, over a migrated schema
    with psycopg.connect(split_roles.agent_url) as conn:
        grants = conn.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = current_user AND table_name = 'approval_actions'"
            " ORDER BY privilege_type"
        ).fetchall()
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert superuser.fetchone() == (False,)
    assert grants == [("INSERT",), ("SELECT",)]
