"""Pytest plugin: a real Docker Engine, the busybox test image and throwaway containers.

Register with `pytest_plugins = ["tests.testbed.docker_fixtures"]`. Every container made here
carries a per-run name prefix (`dat-<8hex>-`) and run label, and is removed at teardown.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import docker
import pytest
from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from tests.testbed.availability import service_unavailable
from tests.testbed.docker_engine import (
    HTTP_COMMAND,
    HTTP_PORT,
    DockerEngine,
    DockerEngineUnavailable,
    ensure_docker_engine,
    ensure_test_image,
    wait_until,
)

STATE_DIR = Path(__file__).resolve().parents[2] / ".testbed" / "docker"
RUN_LABEL = "org.devops-agent.testbed.run"
READY_DEADLINE_S = 30.0
SECOND_NS = 1_000_000_000


class ContainerFactory(Protocol):
    def __call__(
        self,
        name_suffix: str | None = None,
        command: list[str] | None = None,
        labels: dict[str, str] | None = None,
        http: bool = False,
        healthcheck: bool = False,
    ) -> Container: ...


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    """The engine for the whole session; dockerd is stopped at the end only if we started it."""
    try:
        engine = ensure_docker_engine(STATE_DIR)
    except (DockerEngineUnavailable, DockerException, OSError) as exc:
        service_unavailable("Docker Engine", str(exc))
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_engine: DockerEngine) -> docker.DockerClient:
    return docker_engine.client


@pytest.fixture(scope="session")
def docker_url(docker_engine: DockerEngine) -> str:
    return docker_engine.url


@pytest.fixture(scope="session")
def test_image(docker_client: docker.DockerClient) -> str:
    """Tag of the busybox image, built from scratch once per machine."""
    try:
        return ensure_test_image(docker_client)
    except (DockerException, OSError) as exc:
        service_unavailable("Docker test image", f"building it failed: {exc}")


@pytest.fixture(scope="session")
def docker_run_prefix(docker_client: docker.DockerClient) -> Iterator[str]:
    """A name prefix unique to this run; any container left with its label is removed at the end."""
    prefix = f"dat-{secrets.token_hex(4)}-"
    yield prefix
    for leftover in docker_client.containers.list(
        all=True, filters={"label": f"{RUN_LABEL}={prefix}"}
    ):
        _remove_quietly(leftover)


@pytest.fixture
def container_factory(
    docker_client: docker.DockerClient, test_image: str, docker_run_prefix: str
) -> Iterator[ContainerFactory]:
    """Make running containers from the test image; all of them are force-removed afterwards."""
    made: list[Container] = []

    def make(
        name_suffix: str | None = None,
        command: list[str] | None = None,
        labels: dict[str, str] | None = None,
        http: bool = False,
        healthcheck: bool = False,
    ) -> Container:
        name = docker_run_prefix + (name_suffix or secrets.token_hex(3))
        options = _run_options(http=http, healthcheck=healthcheck)
        container = docker_client.containers.run(
            test_image,
            command if command is not None else (HTTP_COMMAND if http else None),
            name=name,
            labels={**(labels or {}), RUN_LABEL: docker_run_prefix},
            detach=True,
            **options,
        )
        made.append(container)
        _wait_ready(container, http=http)
        return container

    yield make
    for container in made:
        _remove_quietly(container)


def http_url(container: Container, path: str = "/") -> str:
    """The loopback URL of a container made with `http=True`."""
    container.reload()
    binding = container.ports[f"{HTTP_PORT}/tcp"]
    assert binding, f"container {container.name} publishes no port {HTTP_PORT}"
    return f"http://127.0.0.1:{binding[0]['HostPort']}{path}"


def _run_options(*, http: bool, healthcheck: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if http:
        options["ports"] = {f"{HTTP_PORT}/tcp": ("127.0.0.1", None)}
    if healthcheck:
        probe = (
            ["CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{HTTP_PORT}/"]
            if http
            else ["CMD", "true"]
        )
        options["healthcheck"] = {
            "test": probe,
            "interval": SECOND_NS,
            "timeout": SECOND_NS,
            "retries": 3,
            "start_period": 0,
        }
    return options


def _wait_ready(container: Container, *, http: bool) -> None:
    def running() -> bool:
        container.reload()
        if container.status in {"exited", "dead"}:
            raise RuntimeError(f"container {container.name} exited: {container.logs()!r}")
        return container.status == "running"

    wait_until(running, timeout_s=READY_DEADLINE_S, what=f"container {container.name} to run")
    if http:
        wait_until(
            lambda: _accepts(http_url(container)),
            timeout_s=READY_DEADLINE_S,
            what=f"httpd in {container.name} to answer",
        )


def _accepts(url: str) -> bool:
    host_port = url.split("/")[2]
    host, port = host_port.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return conn.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


def _remove_quietly(container: Container) -> None:
    with contextlib.suppress(NotFound):
        container.remove(force=True)
