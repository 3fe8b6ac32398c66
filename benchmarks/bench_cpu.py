"""Where a workflow's CPU goes: the service, Postgres and the load driver, in CPU milliseconds
per approval workflow, with workflows per second, from /proc (Linux).

Run with `python -m benchmarks.bench_cpu [--workflows N] [--concurrency C] [--workers W]`;
prints one line. The service runs as a subprocess (dry run) on a throwaway database; the
driver is this process, doing what `bench_workflows.py` does per workflow (POST /orchestrate,
POST /approve, long poll until completed). Postgres is every process of the `postgres` user,
so run it on a machine where nothing else uses that server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import httpx

from benchmarks.bench_workflows import (
    DEFAULT_ADMIN_URL,
    _api_workflow,
    _bounded,
    _service_env,
    _web_targets,
)
from tests.testbed.postgres import PostgresServer
from tests.testbed.service import ServiceProcess

WARM_UP = 32
TICKS = os.sysconf("SC_CLK_TCK")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="the service's AGENT_WORKERS")
    args = parser.parse_args(argv)
    server = PostgresServer(admin_url=os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL)
    url = server.create_database("bench")
    try:
        print(asyncio.run(_measure(url, args)))
    finally:
        server.drop_database(url)


async def _measure(url: str, args: argparse.Namespace) -> str:
    n, c = args.workflows, args.concurrency
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as folder:
        targets = _web_targets(n + WARM_UP)
        env = _service_env(url, Path(folder), targets=targets, workers=args.workers)
        service = ServiceProcess(env=env, log_path=Path(folder) / "service.log")
        await asyncio.to_thread(service.start)
        try:
            assert service.process is not None
            pid = service.process.pid
            limits = httpx.Limits(max_connections=4 * c)
            async with httpx.AsyncClient(base_url=service.base_url, limits=limits) as client:
                job = partial(_api_workflow, client, iter(targets))
                await _bounded([job] * WARM_UP, concurrency=c)
                before, started = _cpu_now(pid), time.perf_counter()
                await _bounded([job] * n, concurrency=c)
                after, wall = _cpu_now(pid), time.perf_counter() - started
        finally:
            service.stop()
    per = {name: 1000 * (after[name] - before[name]) / n for name in before}
    return (
        f"{n} workflows at {c} in flight, {args.workers} worker(s): {n / wall:.1f}/s; CPU ms per "
        f"workflow: service {per['service']:.1f}, Postgres {per['postgres']:.1f}, driver "
        f"{per['driver']:.1f}, whole machine {per['machine']:.1f}; service busy "
        f"{(after['service'] - before['service']) / wall:.2f} cores, machine "
        f"{(after['machine'] - before['machine']) / wall:.2f} of {os.cpu_count()}"
    )


def _cpu_now(service_pid: int) -> dict[str, float]:
    """CPU seconds so far: the service's process tree, Postgres, this driver, the machine."""
    return {
        "service": _tree_cpu(service_pid),
        "postgres": sum(_process_cpu(pid) for pid in _pids("-u", "postgres")),
        "driver": _process_cpu(os.getpid()),
        "machine": _machine_cpu(),
    }


def _pids(*selector: str) -> list[int]:
    found = subprocess.run(["pgrep", *selector], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def _tree_cpu(pid: int) -> float:
    return _process_cpu(pid) + sum(_tree_cpu(child) for child in _pids("-P", str(pid)))


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # ended between the listing and the read
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _machine_cpu() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICKS  # all but idle and iowait


if __name__ == "__main__":
    main()
