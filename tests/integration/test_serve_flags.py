"""`devops-agent serve --host --port --workers`: flags win over AGENT_HOST/AGENT_PORT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import wait_for
from tests.testbed.service import free_port


def workers_of(pid: int) -> list[int]:
    """Child processes started by multiprocessing's spawn (uvicorn's workers), not its
    resource tracker."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(p) for p in path.read_text().split()] if path.exists() else []
    return [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def ready(url: str) -> int:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code
    except httpx.TransportError:
        return 0


def test_serve_flags_override_env_and_start_workers(database_url: str, tmp_path: Path) -> None:
    flag_port, env_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")}
    env |= {
        "DATABASE_URL": database_url,
        "AGENT_PORT": str(env_port),
        "AGENT_HOST": "0.0.0.0",
        "AGENT_DATA_DIR": str(tmp_path),
        "AGENT_WORKERS": "1",
    }
    argv = [
        sys.executable,
        "-m",
        "agent_orchestrator",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(flag_port),
        "--workers",
        "2",
    ]
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{flag_port}"
        wait_for(
            lambda: ready(url),
            until=lambda code: code == 200,
            timeout_s=60,
            interval_s=0.2,
            what="/ready on the --port flag",
        )
        assert ready(f"http://127.0.0.1:{env_port}") == 0  # AGENT_PORT lost to the flag
        workers = wait_for(
            lambda: workers_of(process.pid),
            until=lambda pids: len(pids) >= 2,
            timeout_s=30,
            what="two uvicorn workers",
        )
        assert len(workers) == 2, workers
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
