"""What is checked before a request's body is read: the caller (wrong keys throttled), the
body's size and pace; and what every request leaves behind: an access line with its principal
and request id, a crash included. Also /metrics, /ready, a database outage and /docs."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from agent_orchestrator.app import create_app
from shared.lib.executors.fake import FakeExecutor
from shared.lib.settings import load_settings
from tests.helpers import CONFIG_DIR, FIXTURES, KEYS, auth
from tests.integration.alerts_support import TOKEN
from tests.testbed.live_app import served
from tests.testbed.postgres import PostgresServer

METRICS_TOKEN = "test-metrics-token-0123456789abcdef"
StartApi = Callable[..., TestClient]


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    return empty_database_url


def build_app(database_url: str, tmp_path: Path, **extra: Any) -> Any:
    settings = load_settings(
        DATABASE_URL=database_url,
        AGENT_CONFIG_DIR=CONFIG_DIR,
        AGENT_DATA_DIR=tmp_path,
        AGENT_ENVIRONMENTS_FILE=FIXTURES / "environments.yml",
        AGENT_ALERT_WEBHOOK_TOKEN=TOKEN,
        **extra,
    )
    fakes = {kind: FakeExecutor(kind=kind) for kind in ("docker", "ssh", "http")}
    return create_app(settings, executors=fakes)


@pytest.fixture
def start_api(database_url: str, tmp_path: Path) -> Iterator[StartApi]:
    clients: list[TestClient] = []

    def start(**extra: Any) -> TestClient:
        client = TestClient(build_app(database_url, tmp_path, **extra))
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def raw_exchange(base_url: str, head: str, body: bytes = b"") -> tuple[int, dict[str, str], str]:
    """Send a request's head and part of a body on a socket; the status, headers and body."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received or not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head_text, _, rest = received.partition(b"\r\n\r\n")
    lines = head_text.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, rest.decode()


def _complete(received: bytes) -> bool:
    head, _, rest = received.partition(b"\r\n\r\n")
    for line in head.decode().split("\r\n"):
        if line.lower().startswith("content-length:"):
            return len(rest) >= int(line.split(":")[1])
    return False


def metric(name: str, **labels: str) -> float:
    """A process-wide counter's value (read directly: a throttled client cannot scrape)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- authentication before the body ------------------------------------------------------------


def test_anonymous_callers_get_401_before_their_body_is_parsed(start_api: StartApi) -> None:
    api = start_api()
    for body in (b"{not json", json.dumps({"request": "x" * 5000}).encode()):
        response = api.post(
            "/orchestrate", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401, response.text
        assert "missing API key" in response.json()["detail"]


def test_anonymous_callers_are_answered_without_the_body_being_awaited(
    database_url: str, tmp_path: Path
) -> None:
    with served(build_app(database_url, tmp_path)) as base_url:
        head = (
            "POST /orchestrate HTTP/1.1\nHost: test\nContent-Type: application/json\n"
            "Content-Length: 30000000\n"
        )
        status, _, body = raw_exchange(base_url, head)  # not a byte of the 30 MB is sent
    assert status == 401 and "missing API key" in body


# --- body bounds -------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_declared_or_streamed(start_api: StartApi) -> None:
    api = start_api(AGENT_MAX_BODY_BYTES=4096)
    big = json.dumps({"operation": "logs", "target": "web", "params": {"x": "y" * 10_000}})
    declared = api.post(
        "/orchestrate", content=big, headers={**auth("alice"), "Content-Type": "application/json"}
    )
    assert declared.status_code == 413, declared.text
    assert "AGENT_MAX_BODY_BYTES" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000].encode()

    streamed = api.post(
        "/orchestrate",
        content=chunks(),
        headers={**auth("alice"), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413, streamed.text
    slack = api.post("/slack/interactivity", content=b"x" * 1_000_001)
    assert slack.status_code == 413, slack.text  # deliveries get 1 MB, and the answer says so
    assert "1000000 bytes (the limit for webhook and signed deliveries)" in slack.text


def test_a_slow_body_is_408(database_url: str, tmp_path: Path) -> None:
    app = build_app(database_url, tmp_path, AGENT_BODY_TIMEOUT_S=0.5)
    with served(app) as base_url:
        head = (
            "POST /orchestrate HTTP/1.1\nHost: test\nContent-Type: application/json\n"
            f"Authorization: Bearer {KEYS['alice']}\nContent-Length: 100\n"
        )
        status, _, body = raw_exchange(base_url, head, b'{"request": ')  # and then nothing
    assert status == 408 and "AGENT_BODY_TIMEOUT_S" in body


# --- throttling wrong credentials ---------------------------------------------------------------


def test_wrong_keys_are_throttled_per_client_with_retry_after_and_counted(
    start_api: StartApi,
) -> None:
    api = start_api(AGENT_AUTH_FAILURES_PER_MINUTE=3)
    before = metric("orchestrator_auth_failures_total", credential="api_key", outcome="throttled")
    for _ in range(3):
        wrong = api.get("/alerts", headers={"X-API-Key": "guess-0000"})
        assert wrong.status_code == 401, wrong.text
    throttled = api.get("/alerts", headers={"X-API-Key": "guess-0001"})
    assert throttled.status_code == 429, throttled.text
    assert int(throttled.headers["Retry-After"]) >= 1
    assert "too many wrong API keys" in throttled.json()["detail"]
    after = metric("orchestrator_auth_failures_total", credential="api_key", outcome="throttled")
    assert after == before + 1
    # Even a right key waits: a guesser must not learn which guess was right.
    assert api.get("/alerts", headers=auth("alice")).status_code == 429
    webhook = api.post("/webhook/alerts", json={}, headers={"Authorization": "Bearer nope"})
    assert webhook.status_code == 429


def test_wrong_webhook_tokens_count_towards_the_throttle(start_api: StartApi) -> None:
    api = start_api(AGENT_AUTH_FAILURES_PER_MINUTE=2)
    labels = {"credential": "webhook_token", "outcome": "rejected"}
    before = metric("orchestrator_auth_failures_total", **labels)
    for _ in range(2):
        response = api.post("/webhook/alerts", json={}, headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
    response = api.post("/webhook/alerts", json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 429
    assert metric("orchestrator_auth_failures_total", **labels) == before + 2


def test_a_missing_key_is_401_and_never_throttled(start_api: StartApi) -> None:
    api = start_api(AGENT_AUTH_FAILURES_PER_MINUTE=1)
    for _ in range(3):
        assert api.get("/alerts").status_code == 401
    assert api.get("/alerts", headers=auth("alice")).status_code == 200


# --- access log and crashes ---------------------------------------------------------------------


def test_every_access_line_names_principal_and_request_id_a_crash_included(
    start_api: StartApi, caplog: pytest.LogCaptureFixture
) -> None:
    api = start_api()

    async def boom() -> None:
        raise RuntimeError("deliberate crash for the test")

    api.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    caplog.set_level(logging.INFO, logger="agent_orchestrator.access")
    ok = api.get("/alerts", headers={**auth("bob"), "X-Request-ID": "req-ok-1"})
    assert ok.status_code == 200
    crash = api.get("/boom", headers={**auth("alice"), "X-Request-ID": "req-crash-1"})
    assert crash.status_code == 500
    assert crash.json()["request_id"] == "req-crash-1"
    assert "req-crash-1" in crash.json()["detail"]
    assert crash.headers["X-Request-ID"] == "req-crash-1"
    anonymous = api.get("/alerts", headers={"X-Request-ID": "req-anon-1"})
    assert anonymous.status_code == 401
    lines = {
        record.request_id: record  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "agent_orchestrator.access" and record.getMessage() == "request"
    }
    assert (lines["req-ok-1"].principal, lines["req-ok-1"].status) == ("bob", 200)  # type: ignore[attr-defined]
    assert (lines["req-crash-1"].principal, lines["req-crash-1"].status) == ("alice", 500)  # type: ignore[attr-defined]
    assert (lines["req-anon-1"].principal, lines["req-anon-1"].status) == (None, 401)  # type: ignore[attr-defined]
    crashes = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert crashes and crashes[0].exc_info is not None


# --- metrics, readiness, outage, docs -----------------------------------------------------------


def test_metrics_need_an_api_key_or_the_metrics_token(start_api: StartApi) -> None:
    api = start_api(METRICS_TOKEN=METRICS_TOKEN)
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    scraped = api.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200 and "orchestrator_auth_failures_total" in scraped.text
    assert api.get("/metrics", headers=auth("alice")).status_code == 200


def block_database(server: PostgresServer, url: str, *, blocked: bool) -> None:
    """Refuse (or allow again) new connections to the test's database and end the open ones.

    Through the server's admin URL: an embedded server's URL carries its socket folder in the
    query, which a hand-made URL would lose."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(not blocked).lower()}')
        if blocked:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )


def test_a_database_outage_is_a_generic_503_on_ready_and_on_routes(
    start_api: StartApi, database_url: str, postgres_server: PostgresServer
) -> None:
    api = start_api(DB_POOL_TIMEOUT_S=1)
    assert api.get("/ready").status_code == 200
    block_database(postgres_server, database_url, blocked=True)
    try:
        ready = api.get("/ready")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "database": "unreachable",
            "migrations": "unknown",
        }
        assert api.head("/ready").status_code == 503  # as load balancers probe it
        for _ in range(2):  # a broken pooled connection first, then no connection at all
            answer = api.get("/alerts", headers=auth("alice"))
            assert answer.status_code == 503, answer.text
            assert "database is unavailable" in answer.json()["detail"]
            assert answer.headers["Retry-After"]
    finally:
        block_database(postgres_server, database_url, blocked=False)
    recovered = api.get("/ready")
    assert recovered.status_code == 200, recovered.text


def test_docs_load_their_assets_from_the_service(start_api: StartApi) -> None:
    api = start_api()
    for page in ("/docs", "/redoc"):
        html = api.get(page).text
        assert "cdn" not in html.lower() and "googleapis" not in html
        for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/redoc.standalone.js"):
            if asset.rsplit("/", 1)[1] in html:
                assert api.get(asset).status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in api.get("/docs").text


def test_unknown_methods_are_405_before_the_metrics_count_them(
    start_api: StartApi, caplog: pytest.LogCaptureFixture
) -> None:
    """Each invented method name (`XYZ1 /health`) added ~9 series to /metrics, anonymously."""
    api = start_api()
    caplog.set_level(logging.INFO, logger="agent_orchestrator.access")
    for n in range(20):
        answer = api.request(f"XYZ{n}", "/health", headers={"X-Request-ID": f"req-xyz-{n}"})
        assert answer.status_code == 405, answer.text
        assert answer.headers["Allow"] == "GET, HEAD"
        assert "/health takes GET, HEAD" in answer.json()["detail"]
    assert api.get("/health").status_code == 200
    scraped = api.get("/metrics", headers=auth("alice")).text
    assert 'method="XYZ' not in scraped
    assert 'method="GET"' in scraped  # the standard methods are counted as before
    logged = {
        record.request_id: record.status  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "agent_orchestrator.access" and record.getMessage() == "request"
    }
    assert all(logged[f"req-xyz-{n}"] == 405 for n in range(20))  # the access log sees them


def test_load_balancers_may_probe_health_and_ready_with_head(
    database_url: str, tmp_path: Path
) -> None:
    with served(build_app(database_url, tmp_path)) as base_url:
        for path in ("/health", "/ready"):
            status, headers, body = raw_exchange(
                base_url, f"HEAD {path} HTTP/1.1\nHost: x\nConnection: close\n"
            )
            assert status == 200, path
            assert headers["content-type"] == "application/json" and body == ""
