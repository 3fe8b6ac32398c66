"""GET /status and `devops-agent status` against a real service process, with a Docker engine
that is unreachable, one that never answers, and an SSH host that is down, beside live ones.

The machine's shared dockerd is never stopped: the dead engines are a closed loopback port and
a loopback listener that accepts but never answers (so the probe's bound is what ends it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import KEYS
from tests.testbed.service import ServiceProcess, free_port
from tests.testbed.sshd import SshdFleet

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / ".venv" / "bin" / "devops-agent"
ANSWER_DEADLINE_S = 2.0  # what the issue asks of /status, whatever is down


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


@pytest.fixture
def service(
    database_url: str,
    docker_url: str,
    sshd_fleet: SshdFleet,
    silent_listener: int,
    tmp_path: Path,
) -> Iterator[ServiceProcess]:
    live = sshd_fleet.hosts[0]
    environments = {
        "version": 1,
        "environments": {
            "dev": {
                "docker_hosts": {
                    "live": docker_url,
                    "dead": f"tcp://127.0.0.1:{free_port()}",
                    "silent": f"tcp://127.0.0.1:{silent_listener}",
                },
                "ssh_hosts": {
                    "live": {
                        "host": live.host,
                        "port": live.port,
                        "user": live.user,
                        "key_path": str(live.client_key),
                        "known_hosts": str(live.known_hosts),
                    },
                    "down": {
                        "host": "127.0.0.1",
                        "port": free_port(),
                        "user": live.user,
                        "key_path": str(live.client_key),
                        "known_hosts": str(live.known_hosts),
                    },
                },
            }
        },
    }
    environments_file = tmp_path / "environments.yml"
    environments_file.write_text(json.dumps(environments))  # JSON is YAML
    process = ServiceProcess(
        env={
            "DATABASE_URL": database_url,
            "AGENT_CONFIG_DIR": str(REPO / "config"),
            "AGENT_ENVIRONMENTS_FILE": str(environments_file),
            "AGENT_DATA_DIR": str(tmp_path),
        },
        log_path=tmp_path / "service.log",
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {component["name"]: component for component in report["components"]}


def test_status_reports_down_hosts_with_reasons_and_the_rest_up(service: ServiceProcess) -> None:
    assert httpx.get(f"{service.base_url}/status", timeout=10).status_code == 401

    # The client gives up after 2 s: a probe that was not bounded would fail this call.
    reply = httpx.get(
        f"{service.base_url}/status",
        headers={"Authorization": f"Bearer {KEYS['alice']}"},
        timeout=ANSWER_DEADLINE_S,
    )
    assert reply.status_code == 200, reply.text
    report = reply.json()
    components = by_name(report)
    print(f"/status took {report['elapsed_ms']} ms server-side")  # the figure for the report

    assert report["state"] == "degraded"
    dead = components["docker:dev/dead"]
    assert dead["state"] == "down"
    assert "did not answer" in dead["error"] and "tcp://127.0.0.1" in dead["error"]
    silent = components["docker:dev/silent"]
    assert silent["state"] == "down"
    assert silent["error"] == f"no answer within {report['probe_timeout_s']:g} s"
    ssh_down = components["ssh:dev/down"]
    assert ssh_down["state"] == "down"
    assert "refused" in ssh_down["error"]

    assert components["database"]["state"] == "up"
    migrations = components["migrations"]
    assert migrations["state"] == "up"
    assert migrations["detail"]["applied"] == migrations["detail"]["known"] > 0
    live_docker = components["docker:dev/live"]
    assert live_docker["state"] == "up", live_docker
    assert live_docker["detail"]["engine_version"]
    live_ssh = components["ssh:dev/live"]
    assert live_ssh["state"] == "up", live_ssh
    assert live_ssh["detail"]["server_version"].startswith("SSH-2.0-")
    assert components["sweeper"]["state"] == "up"
    assert components["llm"]["state"] == "unconfigured"
    assert "LLM_BASE_URL" in components["llm"]["error"]
    assert components["tracing"]["state"] == "unconfigured"
    assert components["work"]["state"] == "up"
    assert report["pending_approvals"] == 0
    assert report["running_workflows"] == 0
    for component in report["components"]:
        assert component["latency_ms"] is not None


def test_cli_status_prints_the_table_and_exits_1_when_something_is_down(
    service: ServiceProcess,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_")} | {
        "AGENT_URL": service.base_url,
        "AGENT_API_KEY": KEYS["bob"],
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [str(CLI), "status"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    row = next(line for line in lines if "ssh:dev/down" in line)
    assert "down" in row and "refused" in row
    row = next(line for line in lines if "docker:dev/live" in line)
    assert " up " in row and "engine" in row
    pending = next(line for line in lines if line.startswith("pending approvals"))
    assert pending.split() == ["pending", "approvals", "0"]
