"""The least CPU the HTTP API could spend per approval workflow on this machine, against what the
issue-16 ratio (API >= 0.7x the bare graph at 16 in flight) leaves it.

Run with `python -m benchmarks.bench_floor [--workflows N]`; prints a table and one line. Four
measurements, one after the other on a throwaway database on DATABASE_URL:

- the bare graph with the service's ten nodes on one `PooledPostgresSaver`, in this process at
  16 in flight: its rate, and this process's CPU per workflow (LangGraph and the saver: work
  the service does too, node for node);
- the bare graph of the headline's seven nodes, the same way: its rate sets the budget;
- the statements each workflow sends: the bare graph's, counted in this process, and the
  service's, from `bench_statements.py` (a subprocess);
- one statement's CPU in the client: a small insert with a JSON document, four to a pipeline on
  a pooled connection (how the service batches what a node writes), at 16 in flight;
- the HTTP floor: a FastAPI app with the service's three routes doing nothing (a validated body
  in, a fixed JSON out), served by uvicorn with the service's protocol in a subprocess and
  driven as `bench_cpu.py` drives the service (POST /orchestrate, POST /approve, GET the
  workflow): the server's CPU per workflow.

The floor is the bare graph's CPU, plus the HTTP floor, plus the statements the service sends
beyond the bare graph's at one statement's cost. It leaves out everything else the service does
(policy, authentication, audit content, the long poll's wake-up, logging), so the real service
can only spend more. The budget is one core's time at 0.7x the rate of the bare graph the
headline compares with (seven nodes, `bench_workflows.py`): the service
runs in one process, and a second worker does not add throughput on two cores
(docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from agent_orchestrator.system.transport import NoDelayH11Protocol
from benchmarks import bench_cpu
from benchmarks.bench_cpu import _pids, _process_cpu
from benchmarks.bench_statements import StatementCount
from benchmarks.bench_workflows import (
    DEFAULT_ADMIN_URL,
    POOL_MAX,
    RESTART_ON_PROD,
    SEVEN_NODES,
    TEN_NODES,
    _bare_graph,
    _bare_workflow,
    _bounded,
)
from shared.lib.db.checkpointer import PooledPostgresSaver
from shared.lib.db.pool import Pool, open_pool
from tests.testbed.postgres import PostgresServer
from tests.testbed.service import free_port

CONCURRENCY = 16
WARM_UP = 32
COUNTED = 20  # bare workflows whose statements are counted (after the timed run)
PER_PIPELINE = 4
READY_DEADLINE_S = 30.0
GOAL = 0.7


# --- the HTTP floor: the service's three routes, doing nothing ---------------------------------


class Orchestrate(BaseModel):
    operation: str
    environment: str
    target: str
    params: dict[str, Any] = {}
    reason: str | None = None


class Decision(BaseModel):
    reason: str | None = None


TIMELINE: list[dict[str, Any]] = [
    {"event": event, "created_at": "2026-11-30T10:00:00.000000+00:00", "detail": {}}
    for event in ("received", "planned", "assessed", "claimed", "investigated",
                  "approval_requested", "approved", "executing", "executed", "verified",
                  "completed")
]  # fmt: skip

floor_app = FastAPI()


@floor_app.post("/orchestrate", status_code=201)
async def orchestrate(body: Orchestrate) -> dict[str, Any]:
    return {"workflow_id": uuid.uuid4().hex, "approval_id": uuid.uuid4().hex,
            "status": "awaiting_approval"}  # fmt: skip


@floor_app.post("/approve/{approval_id}", status_code=202)
async def approve(approval_id: str, body: Decision) -> dict[str, Any]:
    return {"approval_id": approval_id, "status": "approved"}


@floor_app.get("/workflows/{workflow_id}")
async def workflow(workflow_id: str, wait: float = 0, answered: str | None = None) -> Any:
    return {"workflow_id": workflow_id, "status": "completed", "error": None,
            "timeline": TIMELINE}  # fmt: skip


def serve_floor_app(port: int) -> None:
    uvicorn.run(floor_app, host="127.0.0.1", port=port, http=NoDelayH11Protocol, log_config=None)


async def _floor_workflow(client: httpx.AsyncClient) -> None:
    started = await client.post("/orchestrate", json={**RESTART_ON_PROD, "target": "web"})
    ids = started.json()
    await client.post(f"/approve/{ids['approval_id']}", json={})
    done = await client.get(f"/workflows/{ids['workflow_id']}", params={"wait": 30})
    if done.json()["status"] != "completed":
        raise RuntimeError(f"the floor app answered {done.text}")


async def _http_floor(n: int) -> float:
    """The floor app's CPU ms per workflow (three requests)."""
    port = free_port()
    server = await asyncio.to_thread(_start_floor_app, port)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            await _ready(client)
            job = partial(_floor_workflow, client)
            await _bounded([job] * WARM_UP, concurrency=CONCURRENCY)
            before = _process_cpu(server.pid)
            await _bounded([job] * n, concurrency=CONCURRENCY)
            return 1000 * (_process_cpu(server.pid) - before) / n
    finally:
        server.terminate()
        server.wait(timeout=10)


def _start_floor_app(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "benchmarks.bench_floor", "--serve", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL)


async def _ready(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        try:
            await client.get("/workflows/ready")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


# --- the bare graph and one statement -----------------------------------------------------------


async def _bare(
    pool: Pool, n: int, nodes: Sequence[Any] = TEN_NODES
) -> tuple[float, float, float, float]:
    """Rate, this process's and Postgres's CPU ms per workflow, statements per workflow."""
    graphs = [_bare_graph(PooledPostgresSaver(pool), nodes)]
    job = partial(_bare_workflow, graphs)
    await _bounded([job] * WARM_UP, concurrency=CONCURRENCY)
    before, postgres = time.process_time(), _postgres_cpu()
    started = time.perf_counter()
    await _bounded([job] * n, concurrency=CONCURRENCY)
    wall = time.perf_counter() - started
    own = 1000 * (time.process_time() - before) / n
    postgres = 1000 * (_postgres_cpu() - postgres) / n
    count = StatementCount()
    count.install()
    count.counting = True
    await _bounded([job] * COUNTED, concurrency=CONCURRENCY)
    count.counting = False
    return n / wall, own, postgres, sum(count.kinds.values()) / COUNTED


async def _statement_cost(pool: Pool, n: int) -> float:
    """CPU ms in this process per statement, four to a pipeline on a pooled connection."""
    async with pool.connection() as conn:
        await conn.execute("CREATE TABLE floor_rows (id uuid PRIMARY KEY, body jsonb NOT NULL)")
    body = Jsonb({"event": "executing", "workflow_id": uuid.uuid4().hex, "detail": {"step": 1}})

    async def batch() -> None:
        async with pool.connection() as conn, conn.pipeline():
            for _ in range(PER_PIPELINE):
                await conn.execute(
                    "INSERT INTO floor_rows (id, body) VALUES (%s, %s)", (uuid.uuid4(), body)
                )

    batches = n // PER_PIPELINE
    await _bounded([batch] * WARM_UP, concurrency=CONCURRENCY)
    before = time.process_time()
    await _bounded([batch] * batches, concurrency=CONCURRENCY)
    return 1000 * (time.process_time() - before) / (batches * PER_PIPELINE)


def _postgres_cpu() -> float:
    return sum(_process_cpu(pid) for pid in _pids("-u", "postgres"))


def _service_statements(workflows: int) -> float:
    found = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_statements", "--workflows", str(workflows)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    match = re.search(r"statements per workflow: ([\d.]+)", found.stdout)
    if match is None:
        raise RuntimeError(f"bench_statements printed no count: {found.stdout[-500:]}")
    return float(match.group(1))


# --- the run ------------------------------------------------------------------------------------


async def _service_cpu(url: str, n: int) -> float:
    """The real service's CPU ms per workflow, as `bench_cpu.py` measures it."""
    line = await bench_cpu._measure(url, argparse.Namespace(workflows=n, concurrency=16, workers=1))
    match = re.search(r"service ([\d.]+),", line)
    if match is None:
        raise RuntimeError(f"bench_cpu printed no service figure: {line}")
    return float(match.group(1))


async def _measure(url: str, service_url: str, n: int) -> str:
    pool = await open_pool(url, max_size=POOL_MAX, name="bench-floor")
    try:
        await AsyncPostgresSaver(conn=pool).setup()
        headline_rate, *_ = await _bare(pool, n, SEVEN_NODES)
        rate, graph_ms, postgres_ms, bare_statements = await _bare(pool, n)
        statement_ms = await _statement_cost(pool, 10 * n)
    finally:
        await pool.close()
    http_ms = await _http_floor(n)
    service_statements = await asyncio.to_thread(_service_statements, 40)
    service_ms = await _service_cpu(service_url, n)
    extra = max(service_statements - bare_statements, 0.0)
    floor = graph_ms + http_ms + extra * statement_ms
    budget = 1000 / (GOAL * headline_rate)
    statements = f"{bare_statements:.1f} / {service_statements:.1f}"
    rows = [
        ("bare graph, 7 nodes (the headline's), at 16", f"{headline_rate:.1f} workflows/s"),
        ("bare graph, 10 nodes (the service's), at 16", f"{rate:.1f} workflows/s"),
        ("its process's CPU per workflow (LangGraph, the saver)", f"{graph_ms:.2f} ms"),
        ("Postgres CPU per workflow, bare graph", f"{postgres_ms:.2f} ms"),
        ("statements per workflow: bare graph / service", statements),
        ("one statement's client CPU (4 to a pipeline)", f"{statement_ms:.3f} ms"),
        ("HTTP floor: 3 requests to do-nothing routes", f"{http_ms:.2f} ms"),
        ("floor: graph + HTTP + extra statements", f"{floor:.1f} ms"),
        (f"budget: one core at {GOAL} x the headline's bare rate", f"{budget:.1f} ms"),
        ("the service's CPU per workflow (`bench_cpu.py`'s run)", f"{service_ms:.1f} ms"),
        ("the service's own work (service - floor)", f"{service_ms - floor:.1f} ms"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    verdict = "within" if floor <= budget else "over"
    return (
        f"| measure | figure |\n|---|---|\n{table}\n"
        f"floor {floor:.1f} ms vs budget {budget:.1f} ms per workflow: {verdict} "
        f"({floor / budget:.2f} of it); the service {service_ms:.1f} ms; bare "
        f"{headline_rate:.1f}/s, {n} workflows at {CONCURRENCY}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=400)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the floor app's port
    args = parser.parse_args(argv)
    if args.serve:
        serve_floor_app(args.serve)
        return
    server = PostgresServer(admin_url=os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL)
    url, service_url = server.create_database("bench"), server.create_database("bench")
    try:
        print(asyncio.run(_measure(url, service_url, args.workflows)))
    finally:
        server.drop_database(url)
        server.drop_database(service_url)


if __name__ == "__main__":
    main()
