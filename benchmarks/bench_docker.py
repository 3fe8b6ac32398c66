"""Restart latency on one container: DockerExecutor against the bare docker SDK.

Run with `python -m benchmarks.bench_docker [--runs N]`; writes benchmarks/results/docker.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import secrets
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import docker
from docker.models.containers import Container

from shared.lib.execution.models import ExecutionStatus, OperationCall
from shared.lib.executors.docker import DockerExecutor
from shared.lib.targets.models import DockerTarget
from tests.testbed.docker_engine import ensure_docker_engine, ensure_test_image, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = REPO_ROOT / ".testbed" / "docker"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "docker.md"
STOP_TIMEOUT_S = 10


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="restarts per method (default 10)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    engine = ensure_docker_engine(STATE_DIR)
    try:
        report = _benchmark(engine.client, engine.url, runs=args.runs)
    finally:
        engine.stop()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)


def _benchmark(client: docker.DockerClient, url: str, *, runs: int) -> str:
    image = ensure_test_image(client)
    container = client.containers.run(image, name=f"dat-bench-{secrets.token_hex(4)}", detach=True)
    try:
        _wait_running(container)
        sdk, executor = asyncio.run(_measure(container, url, runs=runs))
    finally:
        container.remove(force=True)
    return _report(client, sdk=sdk, executor=executor, runs=runs)


async def _measure(container: Container, url: str, *, runs: int) -> tuple[list[float], list[float]]:
    target = DockerTarget(
        name="bench",
        environment="bench",
        docker_host="local",
        docker_url=url,
        container=container.name,
    )
    call = OperationCall(operation="restart", target=target, params={"timeout": STOP_TIMEOUT_S})
    executor = DockerExecutor()
    try:
        await executor.execute(call)  # warm-up: creates the client (GET /version)
        sdk: list[float] = []
        through_executor: list[float] = []
        for _ in range(runs):  # alternate so drift in the engine hits both alike
            sdk.append(_timed(lambda: container.restart(timeout=STOP_TIMEOUT_S)))
            _wait_running(container)
            started = time.perf_counter()
            result = await executor.execute(call)
            through_executor.append((time.perf_counter() - started) * 1000)
            if result.status is not ExecutionStatus.OK:
                raise RuntimeError(f"restart through the executor failed: {result}")
    finally:
        await executor.aclose()
    return sdk, through_executor


def _timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def _wait_running(container: Container) -> None:
    def running() -> bool:
        container.reload()
        return container.status == "running"

    wait_until(running, timeout_s=30, what=f"container {container.name} to run")


def _report(
    client: docker.DockerClient, *, sdk: list[float], executor: list[float], runs: int
) -> str:
    version = client.version()
    baseline = statistics.fmean(sdk)
    rows = [
        _row("bare SDK `container.restart()`", sdk, baseline),
        _row("`DockerExecutor` restart", executor, baseline),
    ]
    return "\n".join(
        [
            "# Docker restart latency",
            "",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Docker Engine {version.get('Version')} "
            f"(API {version.get('ApiVersion')}), Python {platform.python_version()}, "
            f"{runs} restarts per method, alternating, on the same busybox container with "
            f"`t={STOP_TIMEOUT_S}` (it exits on SIGTERM at once).",
            "",
            "| method | runs | mean ms | p50 ms | max ms | overhead ratio |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "The executor adds a thread hop, `GET /containers/{name}/json` before and after the "
            "restart (to select the container and report StartedAt before/after), and builds the "
            "result; the client is created once by a warm-up call that is not counted.",
            "",
        ]
    )


def _row(label: str, samples: list[float], baseline: float) -> str:
    mean = statistics.fmean(samples)
    return (
        f"| {label} | {len(samples)} | {mean:.1f} | {statistics.median(samples):.1f} "
        f"| {max(samples):.1f} | {mean / baseline:.2f}x |"
    )


if __name__ == "__main__":
    main()
