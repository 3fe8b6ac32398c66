"""Suite-wide fixtures: the real test bed (Postgres, Docker, sshd) and the service under test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.db.database import Database, open_database
from shared.lib.settings import Settings, load_settings

pytest_plugins = [
    "tests.testbed.postgres",
    "tests.testbed.docker_fixtures",
    "tests.testbed.ssh_fixtures",
    "tests.testbed.db_roles",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "config"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return load_settings(
        DATABASE_URL=database_url, AGENT_CONFIG_DIR=CONFIG_DIR, AGENT_DATA_DIR=tmp_path
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    """The service's database layer on this test's own database, migrated: for store tests."""
    database = await open_database(settings)
    yield database
    await database.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
