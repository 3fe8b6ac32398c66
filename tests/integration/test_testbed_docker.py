"""Foundation smoke test: the test bed's engine creates, restarts and removes a real container."""

from __future__ import annotations

import urllib.request

import docker
import pytest
from docker.errors import NotFound

from tests.testbed.docker_engine import wait_until
from tests.testbed.docker_fixtures import ContainerFactory, http_url

pytestmark = pytest.mark.docker


def test_container_is_created_restarted_and_removed(
    docker_client: docker.DockerClient, container_factory: ContainerFactory
) -> None:
    container = container_factory("smoke", labels={"app": "smoke"})
    container.reload()
    assert container.status == "running"
    assert container.labels["app"] == "smoke"
    started_at = container.attrs["State"]["StartedAt"]

    container.restart(timeout=1)
    container.reload()
    assert container.status == "running"
    assert container.attrs["State"]["StartedAt"] != started_at

    container.remove(force=True)
    with pytest.raises(NotFound):
        docker_client.containers.get(container.id or "")


def test_container_prints_ticks(container_factory: ContainerFactory) -> None:
    container = container_factory()
    wait_until(lambda: b"tick" in container.logs(), timeout_s=10, what="a tick in the logs")


def test_http_container_serves_index(container_factory: ContainerFactory) -> None:
    container = container_factory(http=True)
    with urllib.request.urlopen(http_url(container), timeout=5) as response:  # noqa: S310
        assert response.status == 200
        assert b"devops-agent testbed" in response.read()


def test_healthcheck_reports_healthy(container_factory: ContainerFactory) -> None:
    container = container_factory(http=True, healthcheck=True)

    def healthy() -> bool:
        container.reload()
        status: str = container.attrs["State"]["Health"]["Status"]
        return status == "healthy"

    wait_until(healthy, timeout_s=20, what="the healthcheck to pass")
