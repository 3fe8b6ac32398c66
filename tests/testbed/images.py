"""Images without a registry: a Debian base made with debootstrap, and the agent's image built
from deploy/Dockerfile on it with BuildKit (Debian's /usr/bin/docker, the pip CA as a secret).

The base image is made once per machine and reused (about a minute the first time); the agent
image is rebuilt on each call, with BuildKit's layer and uv caches making an unchanged rebuild
take seconds.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.errors import ImageNotFound

BASE_IMAGE = "local/debian-python:bookworm"
AGENT_IMAGE = "devops-agent-testbed/agent:latest"
DOCKER_CLI = Path("/usr/bin/docker")  # Debian's 20.10 CLI: BuildKit built in, no buildx plugin
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
DEBOOTSTRAP_DEADLINE_S = 900.0
BUILD_DEADLINE_S = 1500.0
APT_DEADLINE_S = 900.0


class ImageBuildError(RuntimeError):
    """A base or agent image that could not be made here."""


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    seconds: float
    size_bytes: int
    reused: bool = False


def ensure_base_image(client: docker.DockerClient) -> BuiltImage:
    """Reuse `BASE_IMAGE` when present; otherwise debootstrap Debian and import it."""
    with contextlib.suppress(ImageNotFound):
        image = client.images.get(BASE_IMAGE)
        return BuiltImage(BASE_IMAGE, 0.0, int(image.attrs.get("Size", 0)), reused=True)
    started = time.monotonic()
    debootstrap = _ensure_package_binary(Path("/usr/sbin/debootstrap"), "debootstrap")
    with tempfile.TemporaryDirectory(prefix="devops-agent-rootfs-") as directory:
        rootfs = Path(directory) / "rootfs"
        argv = [str(debootstrap), "--variant=minbase", f"--include={BASE_PACKAGES}"]
        _run([*argv, "bookworm", str(rootfs), _mirror()], DEBOOTSTRAP_DEADLINE_S, "debootstrap")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            imported = subprocess.run(
                [str(_docker_cli()), "import", "-", BASE_IMAGE],
                stdin=tar.stdout,
                capture_output=True,
                timeout=DEBOOTSTRAP_DEADLINE_S,
                check=False,
            )
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait(timeout=60)
        if imported.returncode != 0 or tar.returncode != 0:
            raise ImageBuildError(f"docker import {BASE_IMAGE} failed: {imported.stderr!r}")
    image = client.images.get(BASE_IMAGE)
    return BuiltImage(BASE_IMAGE, time.monotonic() - started, int(image.attrs.get("Size", 0)))


def build_agent_image(
    client: docker.DockerClient, repo_root: Path, *, tag: str = AGENT_IMAGE
) -> BuiltImage:
    """`docker build` deploy/Dockerfile on the local base, with the pip CA as a BuildKit
    secret (never a layer); BuildKit's cache makes an unchanged rebuild quick."""
    argv = [str(_docker_cli()), "build", "--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    certificate = os.environ.get("PIP_CERT")
    if certificate and Path(certificate).is_file():
        argv += ["--secret", f"id=pipcert,src={certificate}"]
    argv += ["-f", str(repo_root / "deploy" / "Dockerfile"), "-t", tag, str(repo_root)]
    started = time.monotonic()
    env = {**os.environ, "DOCKER_BUILDKIT": "1", "BUILDKIT_PROGRESS": "plain"}
    _run(argv, BUILD_DEADLINE_S, f"docker build of {tag}", env=env)
    image = client.images.get(tag)
    return BuiltImage(tag, time.monotonic() - started, int(image.attrs.get("Size", 0)))


def _docker_cli() -> Path:
    if DOCKER_CLI.exists():
        return DOCKER_CLI
    return _ensure_package_binary(DOCKER_CLI, "docker.io")


def _mirror() -> str:
    """The Debian mirror apt already uses here (the machine may only reach that one)."""
    if DEBIAN_SOURCES.exists():
        for line in DEBIAN_SOURCES.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return DEFAULT_MIRROR


def _ensure_package_binary(binary: Path, package: str) -> Path:
    if binary.exists():
        return binary
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ImageBuildError(f"{binary} is missing; install the package {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    for argv in (install, ["apt-get", "update"], install):
        done = subprocess.run(argv, env=env, capture_output=True, timeout=APT_DEADLINE_S)
        if done.returncode == 0 and binary.exists():
            return binary
    raise ImageBuildError(f"apt-get install {package} did not provide {binary}")


def _run(argv: list[str], timeout_s: float, what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, timeout=timeout_s, env=env, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).decode(errors="replace")[-4000:]
        raise ImageBuildError(f"{what} exited with {done.returncode}:\n{tail}")
