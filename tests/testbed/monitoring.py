"""Prometheus and Alertmanager for end-to-end alert tests: Debian's binaries run as plain
processes on loopback ports, each with its config and storage in a temp dir, stopped by PID.

Installed with apt-get when missing (root on Debian); `MonitoringUnavailable` otherwise, which
tests turn into a skip, or a failure under CI=true.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

PROMETHEUS = Path("/usr/bin/prometheus")
ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
PACKAGES = ("prometheus", "prometheus-alertmanager")
READY_DEADLINE_S = 30.0
STOP_DEADLINE_S = 15.0
APT_DEADLINE_S = 900.0


class MonitoringUnavailable(RuntimeError):
    """Prometheus or Alertmanager is missing here and cannot be installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_monitoring_binaries() -> None:
    """Make sure both binaries exist, installing Debian's packages once if they do not."""
    if PROMETHEUS.exists() and ALERTMANAGER.exists():
        return
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise MonitoringUnavailable(
            f"{PROMETHEUS} or {ALERTMANAGER} is missing and this is not root on Debian; "
            f"install the packages {' and '.join(PACKAGES)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]
    # A fresh machine has no package lists yet: update once, then try again.
    if not (_apt(install, env) or (_apt(["apt-get", "update"], env) and _apt(install, env))):
        raise MonitoringUnavailable(f"apt-get install {' '.join(PACKAGES)} failed")
    for binary in (PROMETHEUS, ALERTMANAGER):
        if not binary.exists():
            raise MonitoringUnavailable(f"{binary} is still missing after apt-get install")


def _apt(argv: list[str], env: dict[str, str]) -> bool:
    completed = subprocess.run(
        argv, env=env, capture_output=True, timeout=APT_DEADLINE_S, check=False
    )
    return completed.returncode == 0


@dataclass
class MonitoringProcess:
    """One Prometheus or Alertmanager process on 127.0.0.1:`port`, logging to `log_path`."""

    name: str
    argv: list[str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MonitoringProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_DEADLINE_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise MonitoringUnavailable(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise MonitoringUnavailable(
            f"{self.name} not ready within {READY_DEADLINE_S:.0f}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_DEADLINE_S)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def start_alertmanager(
    workdir: Path,
    *,
    webhook_url: str,
    bearer_token: str,
    group_wait: str = "1s",
    group_interval: str = "1s",
    repeat_interval: str = "4h",
) -> MonitoringProcess:
    """Alertmanager routing every alert to one webhook with send_resolved and a bearer token."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "route": {
            "receiver": "agent",
            "group_by": ["alertname", "service"],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": repeat_interval,
        },
        "receivers": [
            {
                "name": "agent",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"credentials": bearer_token}},
                    }
                ],
            }
        ],
    }
    config_file = _write_yaml(workdir / "alertmanager.yml", config)
    port = free_port()
    argv = [
        str(ALERTMANAGER),
        f"--config.file={config_file}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=debug",
    ]
    return MonitoringProcess("alertmanager", argv, port, workdir / "alertmanager.log").start()


def start_prometheus(
    workdir: Path,
    *,
    job: str,
    targets: list[str],
    rules: list[dict[str, Any]],
    alertmanager: MonitoringProcess,
    interval: str = "1s",
) -> MonitoringProcess:
    """Prometheus scraping `targets` as `job`, evaluating `rules`, alerting `alertmanager`."""
    workdir.mkdir(parents=True, exist_ok=True)
    rules_file = _write_yaml(
        workdir / "rules.yml",
        {"groups": [{"name": "testbed", "interval": interval, "rules": rules}]},
    )
    config = {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "scrape_timeout": "900ms" if interval == "1s" else "10s",
        },
        "rule_files": [str(rules_file)],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager.port}"]}]}]
        },
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
    }
    config_file = _write_yaml(workdir / "prometheus.yml", config)
    port = free_port()
    argv = [
        str(PROMETHEUS),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        # Firing alerts are re-sent to Alertmanager this often (default 1m).
        f"--rules.alert.resend-delay={interval}",
    ]
    return MonitoringProcess("prometheus", argv, port, workdir / "prometheus.log").start()


def query(prometheus: MonitoringProcess, expr: str) -> list[dict[str, Any]]:
    """The instant-vector result of a PromQL expression."""
    response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def active_alerts(alertmanager: MonitoringProcess) -> list[dict[str, Any]]:
    response = httpx.get(f"{alertmanager.url}/api/v2/alerts", timeout=5)
    response.raise_for_status()
    alerts: list[dict[str, Any]] = response.json()
    return alerts


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
