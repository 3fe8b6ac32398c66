"""The service skeleton: liveness, readiness, metrics, docs and request ids."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

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


def test_metrics_count_requests(client: TestClient) -> None:
    client.get("/health")
    assert client.get("/metrics").status_code == 401  # never anonymous
    body = client.get("/metrics", headers=auth("alice")).text
    assert 'http_requests_total{handler="/health",method="GET",status="2xx"}' in body


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    assert "/ready" in client.get("/openapi.json").json()["paths"]
