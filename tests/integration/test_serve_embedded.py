"""The first README command's promise: with no environment at all the service comes up on an
embedded Postgres, and a restart reuses the same data directory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

STARTUP_DEADLINE_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"service exited with {process.returncode} before it was ready")
        try:
            health = httpx.get(f"{base_url}/health", timeout=1)
            ready = httpx.get(f"{base_url}/ready", timeout=2)
            if health.status_code == 200 and ready.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"service not ready within {STARTUP_DEADLINE_S}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "agent-data"
    directory.mkdir()
    yield directory


def _serve(data_dir: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "AGENT_"))}
    env |= {"AGENT_DATA_DIR": str(data_dir), "AGENT_PORT": str(port)}
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "agent_orchestrator", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _socket_url(data_dir: Path) -> str:
    return f"postgresql://postgres@/postgres?host={data_dir / 'pgdata'}"


def test_embedded_service_keeps_its_data_across_restarts(data_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"

    first = _serve(data_dir, port, log_path)
    try:
        _wait_ready(base_url, first)
        with psycopg.connect(_socket_url(data_dir), autocommit=True) as conn:
            conn.execute(
                "INSERT INTO chat_sessions (id, principal) VALUES (gen_random_uuid(), 'restart')"
            )
    finally:
        _stop(first)
    # uvicorn re-raises SIGTERM after a graceful shutdown, so -15 is a clean stop too.
    assert first.returncode in (0, -signal.SIGTERM), log_path.read_text()[-2000:]
    assert "Application shutdown complete" in log_path.read_text()

    second = _serve(data_dir, port, log_path)
    try:
        _wait_ready(base_url, second)
        with psycopg.connect(_socket_url(data_dir)) as conn:
            row = conn.execute(
                "SELECT count(*) FROM chat_sessions WHERE principal = 'restart'"
            ).fetchone()
    finally:
        _stop(second)
    assert row == (1,)
    assert "skipping initdb" in log_path.read_text()
