"""The service skeleton: liveness, readiness, metrics, docs, request ids and server timing."""

from __future__ import annotations

import gc
import re

import psycopg
from fastapi.testclient import TestClient

from agent_orchestrator.app import create_app
from shared.lib.settings import Settings
from tests.helpers import auth


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "migrations": "current"}


def test_ready_is_503_when_a_migration_is_pending(client: TestClient, database_url: str) -> None:
    latest = client.app.state.database.migrations[-1]  # type: ignore[attr-defined]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (latest.version,))
        try:
            response = client.get("/ready")
        finally:
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (latest.version, latest.name, latest.checksum),
            )
    assert response.status_code == 503
    assert response.json()["migrations"] == "pending"


def test_request_id_is_returned_and_offered_one_kept(client: TestClient) -> None:
    generated = client.get("/health").headers["X-Request-ID"]
    assert len(generated) == 32
    offered = client.get("/health", headers={"X-Request-ID": "incident-42"})
    assert offered.headers["X-Request-ID"] == "incident-42"
    unsafe = client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert unsafe.headers["X-Request-ID"] != "bad id\nwith newline"


def test_server_timing_says_how_long_the_server_took(client: TestClient) -> None:
    timing = client.get("/health").headers["Server-Timing"]
    assert re.fullmatch(r"app;dur=\d+\.\d", timing), timing


def test_metrics_count_requests(client: TestClient) -> None:
    client.get("/health")
    assert client.get("/metrics").status_code == 401  # never anonymous
    body = client.get("/metrics", headers=auth("alice")).text
    assert 'http_requests_total{handler="/health",method="GET",status="2xx"}' in body


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/ready" in client.get("/openapi.json").json()["paths"]


def test_the_start_up_heap_is_frozen_while_serving_and_released_at_shutdown(
    settings: Settings,
) -> None:
    """Full collections skip what start-up made while the service runs; a stopped app hands
    its objects back to the collector."""
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings)) as serving:
        assert serving.get("/health").status_code == 200
        assert gc.get_freeze_count() > 10_000  # modules, schemas, the graph: not a handful
    assert gc.get_freeze_count() == 0
