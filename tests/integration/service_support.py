"""The service in process for integration tests: the repository's config, the suite's targets
(tests/fixtures/environments.yml), in-memory executors or the real ones, one place to set it up."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from docker.models.containers import Container
from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.execution.protocol import Executor
from shared.lib.executors.fake import FakeExecutor
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES


def fake_executors() -> dict[str, FakeExecutor]:
    """In-memory Docker, SSH and HTTP executors; every target starts running and healthy."""
    return {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}


@contextmanager
def agent_api(
    database_url: str,
    data_dir: Path,
    *,
    executors: Mapping[str, Executor] | None = None,
    **settings: Any,
) -> Iterator[TestClient]:
    """The app, started (lifespan run) and stopped around the block; `settings` add to or
    override the suite's defaults by their environment names."""
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "AGENT_CONFIG_DIR": CONFIG_DIR,
        "AGENT_DATA_DIR": data_dir,
        "AGENT_ENVIRONMENTS_FILE": FIXTURES / "environments.yml",
        **settings,
    }
    with TestClient(create_app(load_settings(**values), executors=executors)) as client:
        yield client


def point_prod_web_at(
    monkeypatch: pytest.MonkeyPatch, container: Container, docker_url: str
) -> None:
    """Make prod/web of the suite's targets this real container on this engine."""
    monkeypatch.setenv("TEST_PROD_WEB_CONTAINER", str(container.name))
    monkeypatch.setenv("TEST_DOCKER_URL", docker_url)
