"""A Docker Engine for tests and benchmarks: reuse one that answers, else start Debian's dockerd.

Also builds the busybox test image FROM scratch (no registry is reachable). Its default command
prints "tick" every second. For an HTTP target run it with `HTTP_COMMAND`, which runs
`busybox httpd -f -p 8080 -h /www` (serving /www/index.html) under a shell that exits on SIGTERM.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import APIError, DockerException, ImageNotFound
from docker.models.images import Image

TEST_IMAGE = "devops-agent-testbed/busybox:latest"
BUSYBOX = Path("/bin/busybox")
HTTP_PORT = 8080
INDEX_HTML = "<html><body>devops-agent testbed</body></html>\n"
# PID 1 ignores SIGTERM unless it traps it: the trap lets `docker stop` finish at once.
TICK_SCRIPT = "trap 'exit 0' TERM INT; while true; do echo tick; sleep 1 & wait $!; done"
HTTP_SCRIPT = f"trap 'exit 0' TERM INT; busybox httpd -f -p {HTTP_PORT} -h /www & wait $!"
HTTP_COMMAND = ["/bin/sh", "-c", HTTP_SCRIPT]
DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 30.0
APT_DEADLINE_S = 900.0
BUSYBOX_LABEL = "org.devops-agent.testbed.busybox-sha256"
RECIPE_LABEL = "org.devops-agent.testbed.recipe-sha256"

DOCKERFILE = f"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
CMD {json.dumps(["/bin/sh", "-c", TICK_SCRIPT])}
"""


class DockerEngineUnavailable(RuntimeError):
    """No Docker Engine answers and none could be started here."""


@dataclass
class DockerEngine:
    """A reachable engine; `stop()` ends dockerd only if this process started it."""

    client: docker.DockerClient
    url: str
    started_by_us: bool
    process: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        """Close the client; terminate dockerd by PID when we started it."""
        self.client.close()
        if not self.started_by_us or self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_DEADLINE_S)


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds; raise TimeoutError naming `what` past the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)


def ensure_docker_engine(state_dir: Path) -> DockerEngine:
    """Return an engine that answers, starting dockerd (as root on Debian) if none does."""
    url = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_URL
    client = _answering_client(url)
    if client is not None:
        return DockerEngine(client=client, url=url, started_by_us=False)
    if os.environ.get("DOCKER_HOST"):
        raise DockerEngineUnavailable(f"DOCKER_HOST={url} does not answer a ping")
    return _start_dockerd(state_dir=state_dir, url=url)


def _answering_client(url: str) -> docker.DockerClient | None:
    try:
        client = docker.DockerClient(base_url=url, version="auto", timeout=10)
    except DockerException:
        return None
    try:
        client.ping()
    except DockerException:
        client.close()
        return None
    return client


def _start_dockerd(*, state_dir: Path, url: str) -> DockerEngine:
    _require_root_on_debian()
    dockerd = _install_if_missing()
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = [dockerd, "--host", url, "--pidfile", str(state_dir / "dockerd.pid")]
    with (state_dir / "dockerd.log").open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    client = _wait_for_ping(process, url, state_dir)
    return DockerEngine(client=client, url=url, started_by_us=True, process=process)


def _require_root_on_debian() -> None:
    if os.geteuid() != 0 or not Path("/etc/debian_version").exists():
        raise DockerEngineUnavailable(
            "no engine answers at DOCKER_HOST or /var/run/docker.sock and this is not root on "
            "Debian, so dockerd cannot be installed and started; start an engine or set DOCKER_HOST"
        )


def _install_if_missing() -> str:
    dockerd = Path("/usr/sbin/dockerd")
    if dockerd.exists() and BUSYBOX.exists():
        return str(dockerd)
    packages = ["docker.io", "busybox-static"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    # A fresh machine has no package lists yet: update once, then try again.
    installed = _apt(install, env) or (_apt(["apt-get", "update"], env) and _apt(install, env))
    if not installed:
        raise DockerEngineUnavailable(f"apt-get install {' '.join(packages)} failed")
    if not dockerd.exists():
        raise DockerEngineUnavailable(f"{dockerd} is still missing after apt-get install docker.io")
    return str(dockerd)


def _apt(argv: list[str], env: dict[str, str]) -> bool:
    completed = subprocess.run(
        argv, env=env, capture_output=True, timeout=APT_DEADLINE_S, check=False
    )
    return completed.returncode == 0


def _wait_for_ping(
    process: subprocess.Popen[bytes], url: str, state_dir: Path
) -> docker.DockerClient:
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DockerEngineUnavailable(
                f"dockerd exited with {process.returncode}; see {state_dir / 'dockerd.log'}"
            )
        client = _answering_client(url)
        if client is not None:
            return client
        time.sleep(0.2)
    process.terminate()
    process.wait(timeout=STOP_DEADLINE_S)
    raise DockerEngineUnavailable(
        f"dockerd did not answer at {url} within {START_DEADLINE_S:.0f}s; "
        f"see {state_dir / 'dockerd.log'}"
    )


def ensure_test_image(client: docker.DockerClient) -> str:
    """Build TEST_IMAGE from scratch with the host's static busybox unless it is current."""
    labels = {BUSYBOX_LABEL: _sha256(BUSYBOX.read_bytes()), RECIPE_LABEL: _recipe_digest()}
    previous = _tagged_image(client)
    if previous is not None and _testbed_labels(previous) == labels:
        return TEST_IMAGE
    built, _ = client.images.build(
        fileobj=_build_context(),
        custom_context=True,
        tag=TEST_IMAGE,
        labels=labels,
        rm=True,
        forcerm=True,
        network_mode="none",
    )
    if previous is not None and previous.id != built.id:
        # The old build is now untagged; keep it only while a container still uses it.
        with contextlib.suppress(APIError):
            client.images.remove(previous.id or "")
    return TEST_IMAGE


def _tagged_image(client: docker.DockerClient) -> Image | None:
    try:
        return client.images.get(TEST_IMAGE)
    except ImageNotFound:
        return None


def _testbed_labels(image: Image) -> dict[str, str]:
    found = image.labels or {}
    return {key: found[key] for key in (BUSYBOX_LABEL, RECIPE_LABEL) if key in found}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _recipe_digest() -> str:
    return _sha256((DOCKERFILE + INDEX_HTML).encode())


def _build_context() -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add_file(tar, "Dockerfile", DOCKERFILE.encode(), 0o644)
        _add_file(tar, "busybox", BUSYBOX.read_bytes(), 0o755)
        _add_file(tar, "www/index.html", INDEX_HTML.encode(), 0o644)
    buffer.seek(0)
    return buffer


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))
