"""Approve -> execution latency under load, by AGENT_PLANNING_SLOTS: the same build, the slots
varied, each value run in turn (interleaved rounds).

Run with `python -m benchmarks.bench_planning_slots [--slots 1000,8,4,2] [--rounds 2]
[--workflows N] [--concurrency C]`; prints one line per run and writes
benchmarks/results/planning-slots.md. The service runs as a subprocess (dry run) on a
throwaway database per run; the driver does what `bench_workflows.py` does per workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx

from benchmarks.bench_workflows import (
    DEFAULT_ADMIN_URL,
    REPO_ROOT,
    _api_workflow,
    _bounded,
    _fill_decided_at,
    _pct,
    _server_latencies,
    _service_env,
    _web_targets,
)
from tests.testbed.postgres import PostgresServer
from tests.testbed.service import ServiceProcess

RESULTS = REPO_ROOT / "benchmarks" / "results" / "planning-slots.md"
WARM_UP = 32


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", default="1000,8,4,2", help="values of AGENT_PLANNING_SLOTS")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workflows", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    server = PostgresServer(admin_url=os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL)
    rows = []
    for round_ in range(1, args.rounds + 1):
        for slots in [int(value) for value in args.slots.split(",")]:
            url = server.create_database("bench")
            try:
                line = asyncio.run(_measure(url, slots, args.workflows, args.concurrency))
            finally:
                server.drop_database(url)
            rows.append(f"| {round_} | {slots} | {line} |")
            print(rows[-1], flush=True)
    RESULTS.write_text(
        "# Approve -> execution by AGENT_PLANNING_SLOTS\n\n"
        "`python -m benchmarks.bench_planning_slots`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; each run "
        f"{args.workflows} workflows at {args.concurrency} in flight after {WARM_UP} of warm-up, "
        "its own service and database. Latency: the `executing` event's created_at minus the "
        "approval's decided_at (both Postgres `now()`).\n\n"
        "| round | slots | workflows/s | approve -> executing p50 ms | p99 ms |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


async def _measure(url: str, slots: int, n: int, c: int) -> str:
    with tempfile.TemporaryDirectory(prefix="bench-slots-") as folder:
        targets = _web_targets(n + WARM_UP)
        env = _service_env(url, Path(folder), targets=targets)
        env["AGENT_PLANNING_SLOTS"] = str(slots)
        service = ServiceProcess(env=env, log_path=Path(folder) / "service.log")
        await asyncio.to_thread(service.start)
        try:
            limits = httpx.Limits(max_connections=4 * c)
            async with httpx.AsyncClient(
                base_url=service.base_url, limits=limits, timeout=60
            ) as client:
                job = partial(_api_workflow, client, iter(targets))
                await _bounded([job] * WARM_UP, concurrency=c)
                started = time.perf_counter()
                runs = await _bounded([job] * n, concurrency=c)
                wall = time.perf_counter() - started
                await _fill_decided_at(client, runs)
        finally:
            service.stop()
    latencies = _server_latencies(runs)
    return f"{n / wall:.1f} | {_pct(latencies, 50):.1f} | {_pct(latencies, 99):.1f}"


if __name__ == "__main__":
    main()
