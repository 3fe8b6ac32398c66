"""The image, proven here: a Debian base made without a registry, the agent's image built from
deploy/Dockerfile on it, run as its non-root user with the Docker socket (through the socket's
group only) against Postgres as the DML-only role, healthy, and one approval-gated workflow
restarting a sibling container through the socket."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import docker
import httpx
import pytest
from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from tests.helpers import CONFIG_DIR, FIXTURES, KEYS, wait_for
from tests.testbed.availability import service_unavailable
from tests.testbed.db_roles import SplitRoles
from tests.testbed.docker_fixtures import RUN_LABEL, ContainerFactory
from tests.testbed.images import (
    BuiltImage,
    ImageBuildError,
    build_agent_image,
    ensure_base_image,
)
from tests.testbed.service import free_port

pytestmark = [pytest.mark.deploy, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
TIMINGS = REPO / ".testbed" / "deploy" / "timings.json"
AGENT_UID = 10001
READY_DEADLINE_S = 120.0
HEALTHY_DEADLINE_S = 90.0
MIGRATE_DEADLINE_S = 120.0


@pytest.fixture(scope="session")
def agent_image(docker_client: docker.DockerClient) -> Iterator[dict[str, BuiltImage]]:
    try:
        base = ensure_base_image(docker_client)
        agent = build_agent_image(docker_client, REPO)
    except (ImageBuildError, DockerException, OSError) as error:
        service_unavailable("agent image", str(error))
    yield {"base": base, "agent": agent}


def socket_path(docker_url: str) -> Path:
    if not docker_url.startswith("unix://"):
        service_unavailable("Docker socket", f"{docker_url} is not a unix socket to mount")
    return Path(docker_url.removeprefix("unix://"))


def database_mounts(url: str) -> dict[str, dict[str, str]]:
    """The embedded server listens on a unix socket folder: mount it at the same path."""
    host = parse_qs(urlsplit(url).query).get("host")
    return {host[0]: {"bind": host[0], "mode": "rw"}} if host else {}


@contextlib.contextmanager
def socket_folder_reachable(url: str) -> Iterator[list[str]]:
    """The embedded server's socket sits in its data folder (0700, root's): while the test
    runs, let the container's non-root user reach it through the folder's group (0750 is a
    mode Postgres accepts) and the folder above (0711); the groups to add come back."""
    host = parse_qs(urlsplit(url).query).get("host")
    if not host:
        yield []
        return
    folders = [Path(host[0]), Path(host[0]).parent]
    before = [folder.stat().st_mode & 0o777 for folder in folders]
    folders[0].chmod(0o750)
    folders[1].chmod(before[1] | 0o011)
    try:
        yield [str(folders[0].stat().st_gid)]
    finally:
        for folder, mode in zip(folders, before, strict=True):
            folder.chmod(mode)


def run_container(
    client: docker.DockerClient, image: str, name: str, prefix: str, **options: Any
) -> Container:
    return client.containers.run(
        image, name=name, labels={RUN_LABEL: prefix}, network_mode="host", detach=True, **options
    )


def exit_code(container: Container, deadline_s: float) -> int:
    result = container.wait(timeout=deadline_s)
    return int(result["StatusCode"])


def ready(url: str) -> int:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code
    except httpx.TransportError:
        return 0


def health(container: Container) -> str:
    container.reload()
    if container.status in {"exited", "dead"}:
        raise AssertionError(f"agent container exited:\n{container.logs().decode()[-4000:]}")
    return str(container.attrs["State"].get("Health", {}).get("Status", "none"))


def started_at(container: Container) -> str:
    container.reload()
    return str(container.attrs["State"]["StartedAt"])


def test_image_runs_as_non_root_and_restarts_a_sibling_through_the_socket(
    agent_image: dict[str, BuiltImage],
    docker_client: docker.DockerClient,
    docker_url: str,
    docker_run_prefix: str,
    container_factory: ContainerFactory,
    split_roles: SplitRoles,
) -> None:
    began = time.monotonic()
    image = agent_image["agent"].tag
    socket = socket_path(docker_url)
    sibling = container_factory("prod-web")
    before = started_at(sibling)
    made: list[Container] = []
    opened = contextlib.ExitStack()
    database_groups = opened.enter_context(socket_folder_reachable(split_roles.owner_url))
    try:
        # Migrations as the owner, the way compose's `migrate` service runs them.
        migrate = run_container(
            docker_client,
            image,
            f"{docker_run_prefix}migrate",
            docker_run_prefix,
            command=["db", "init"],
            group_add=database_groups,
            environment={"DATABASE_URL": split_roles.owner_url},
            volumes=database_mounts(split_roles.owner_url),
        )
        made.append(migrate)
        assert exit_code(migrate, MIGRATE_DEADLINE_S) == 0, migrate.logs().decode()
        assert "applied: 0001_approval_requests" in migrate.logs().decode()

        port = free_port()
        name = f"{docker_run_prefix}agent"
        agent = run_container(
            docker_client,
            image,
            name,
            docker_run_prefix,
            group_add=[str(socket.stat().st_gid), *database_groups],
            environment={
                "DATABASE_URL": split_roles.agent_url,
                "AGENT_PORT": str(port),
                "AGENT_ENVIRONMENTS_FILE": "/etc/devops-agent/environments.yml",
                "TEST_PROD_WEB_CONTAINER": str(sibling.name),
                "TEST_DOCKER_URL": "unix:///var/run/docker.sock",
                "AGENT_SELF_CONTAINERS": name,
            },
            volumes={
                str(socket): {"bind": "/var/run/docker.sock", "mode": "rw"},
                str(CONFIG_DIR): {"bind": "/app/config", "mode": "ro"},
                str(FIXTURES / "environments.yml"): {
                    "bind": "/etc/devops-agent/environments.yml",
                    "mode": "ro",
                },
                **database_mounts(split_roles.agent_url),
            },
        )
        made.append(agent)
        url = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: (health(agent), ready(url))[1],
            until=lambda code: code == 200,
            timeout_s=READY_DEADLINE_S,
            interval_s=0.2,
            what="/ready 200 from the image",
        )
        ready_s = time.monotonic() - began
        wait_for(
            lambda: health(agent),
            until=lambda status: status == "healthy",
            timeout_s=HEALTHY_DEADLINE_S,
            interval_s=0.5,
            what="HEALTHCHECK healthy",
        )

        # Non-root: the service's processes run as uid 10001, with the socket's group added.
        agent.reload()
        assert agent.attrs["Config"]["User"] == "agent"
        top = agent.top(ps_args="-o pid,uid")
        column = top["Titles"].index("UID")
        uids = {row[column] for row in top["Processes"]}
        assert uids == {str(AGENT_UID)}, uids
        identity = agent.exec_run(["id", "-u"]).output.decode().strip()
        groups = agent.exec_run(["id", "-G"]).output.decode().split()
        assert identity == str(AGENT_UID)
        assert str(socket.stat().st_gid) in groups

        operator = {"Authorization": f"Bearer {KEYS['alice']}"}
        approver = {"Authorization": f"Bearer {KEYS['bob']}"}
        started = httpx.post(
            f"{url}/orchestrate",
            json={"request": "restart web on prod"},
            headers=operator,
            timeout=30,
        )
        assert started.status_code == 201, started.text
        body = started.json()
        assert body["status"] == "awaiting_approval", body
        assert started_at(sibling) == before  # nothing runs before the approval
        approved = httpx.post(f"{url}/approve/{body['approval_id']}", headers=approver, timeout=30)
        assert approved.status_code == 202, approved.text
        done = wait_for(
            lambda: httpx.get(
                f"{url}/workflows/{body['workflow_id']}", headers=operator, timeout=10
            ).json(),
            until=lambda w: w["status"] in ("completed", "failed"),
            timeout_s=60,
            interval_s=0.2,
            what="workflow finished in the container",
        )
        assert done["status"] == "completed", done
        assert started_at(sibling) != before  # restarted by the container, via the socket
        assert [(e["operation"], e["status"]) for e in done["executions"]] == [("restart", "ok")]
        total_s = time.monotonic() - began
        TIMINGS.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS.write_text(
            json.dumps(
                {
                    "base_image_s": round(agent_image["base"].seconds, 1),
                    "base_image_reused": agent_image["base"].reused,
                    "agent_image_build_s": round(agent_image["agent"].seconds, 1),
                    "agent_image_bytes": agent_image["agent"].size_bytes,
                    "container_ready_s": round(ready_s, 1),
                    "container_test_s": round(total_s, 1),
                },
                indent=2,
            )
        )
    finally:
        for container in made:
            with contextlib.suppress(NotFound):
                container.remove(force=True)
        opened.close()


def test_image_defaults_and_secrets_never_baked_in(
    agent_image: dict[str, BuiltImage], docker_client: docker.DockerClient
) -> None:
    image = docker_client.images.get(agent_image["agent"].tag)
    config = image.attrs["Config"]
    assert config["User"] == "agent"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert "/ready" in " ".join(config["Healthcheck"]["Test"])
    assert config["Entrypoint"] == ["/app/entrypoint.sh"]
    assert "AGENT_CONFIG_DIR=/app/config" in config["Env"]
    history = json.dumps(image.history())
    found = docker_client.containers.run(
        image.id, entrypoint=["sh", "-c", "ls /run/secrets 2>/dev/null | wc -l"], remove=True
    )
    assert found.decode().strip() == "0"  # the build's CA secret left nothing behind
    assert "BEGIN CERTIFICATE" not in history
