"""Approval workflows per second through the HTTP API against a bare LangGraph graph, the
approve-to-execution latency, listing 10,000 pending approvals, and the checkpointer's lock.

Run with `python -m benchmarks.bench_workflows [--workflows N] [--concurrency C]`; writes
benchmarks/results/workflows.md. Uses the Postgres DATABASE_URL names (default: the local
server); each database it makes is a throwaway `bench_<hex>`, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import math
import os
import platform
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypedDict

import httpx
import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt
from psycopg import sql

from shared.lib.approvals.listing import pending_query
from shared.lib.db.checkpointer import PooledPostgresSaver
from shared.lib.db.pool import Pool, open_pool
from tests.helpers import auth
from tests.testbed.postgres import PostgresServer
from tests.testbed.service import ServiceProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "workflows.md"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RESTART_ON_PROD = {"operation": "restart", "environment": "prod"}
WAIT_S = 30  # GET /workflows/{id}?wait=S, the long poll
POOL_MAX = 20  # the service's DB_POOL_MAX default; the bare graph's pool gets the same
PAGE = 1000
PACKAGES = ("langgraph", "langgraph-checkpoint-postgres", "langgraph-checkpoint", "psycopg",
            "psycopg-pool", "fastapi", "uvicorn", "httpx")  # fmt: skip
API = "HTTP API (service subprocess)"
POOLED = "1 `PooledPostgresSaver` (no lock)"
SINGLE = 50  # workflows run one at a time, for the approve -> execution latency
SINGLE_LABEL = f"{API}, 1 in flight"
TARGETS_NOTE = (
    "Each API workflow restarts its own prod target `web-NNNNN` (customer-facing, from a "
    "generated environments file) because restarting the one `web` again and again trips the "
    "flap-breaker rule (more than 3 mutations of a target within 600 s -> critical -> two "
    "ops-lead/admin approvals), a different flow from the one-approver `high` one measured here."
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=int, default=200, help="per run (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="in flight (default 16)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (default 1)")
    parser.add_argument("--savers", type=int, default=4, help="saver instances to spread over")
    parser.add_argument(
        "--workers", type=int, default=1, help="the service's AGENT_WORKERS (default 1)"
    )
    parser.add_argument("--pending", type=int, default=10_000, help="approvals to list")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    server = PostgresServer(admin_url=os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL)
    urls = {}
    try:
        for use in (API, "bare"):
            urls[use] = server.create_database("bench")
        report = asyncio.run(_benchmark(args, urls=urls))
    finally:
        for url in urls.values():
            server.drop_database(url)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)


# --- through the service ------------------------------------------------------------------------


@dataclass
class ApiWorkflow:
    workflow_id: str
    approval_id: str
    ack_ms: float  # POST /approve until its 202, on the client
    executing_at: datetime  # the timeline's `executing` event (Postgres clock)
    decided_at: datetime | None = None  # the approval's decided_at (Postgres clock)


async def _api_workflow(client: httpx.AsyncClient, targets: Iterator[str]) -> ApiWorkflow:
    request = {**RESTART_ON_PROD, "target": next(targets)}
    started = _expect(await client.post("/orchestrate", json=request, headers=auth("alice")), 201)
    if started["status"] != "awaiting_approval":
        raise RuntimeError(f"expected a pause for approval, got {started}")
    workflow_id, approval_id = started["workflow_id"], started["approval_id"]
    sent = time.perf_counter()
    approve = await client.post(f"/approve/{approval_id}", json={}, headers=auth("bob"))
    ack_ms = (time.perf_counter() - sent) * 1000
    _expect(approve, 202)
    while True:  # long poll: answered as soon as the run the approval resumed ends
        params = {"wait": WAIT_S, "answered": approval_id}
        url = f"/workflows/{workflow_id}"
        detail = _expect(await client.get(url, params=params, headers=auth("alice")))
        if detail["status"] not in ("planning", "awaiting_approval", "running"):
            break
    if detail["status"] != "completed":
        raise RuntimeError(f"workflow {workflow_id} ended {detail['status']}: {detail['error']}")
    executing = next(e for e in detail["timeline"] if e["event"] == "executing")
    return ApiWorkflow(
        workflow_id, approval_id, ack_ms, datetime.fromisoformat(executing["created_at"])
    )


async def _fill_decided_at(client: httpx.AsyncClient, runs: list[ApiWorkflow]) -> None:
    async def one(run: ApiWorkflow) -> None:
        approval = _expect(await client.get(f"/approvals/{run.approval_id}", headers=auth("bob")))
        run.decided_at = datetime.fromisoformat(approval["decided_at"])

    await _bounded([partial(one, run) for run in runs], concurrency=8)


def _expect(response: httpx.Response, status: int = 200) -> Any:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}, expected {status}: {response.text[:500]}"
        )
    return response.json()


def _web_targets(count: int) -> list[str]:
    return [f"web-{i:05d}" for i in range(count)]


def _service_env(
    database_url: str, tmp: Path, *, targets: list[str], workers: int = 1
) -> dict[str, str]:
    services = "".join(
        f"      {name}:\n        kind: docker\n        docker_host: local\n"
        f"        container: prod-{name}\n        tags: [customer-facing]\n"
        for name in targets
    )
    environments = tmp / "environments.yml"
    environments.write_text(
        "version: 1\nenvironments:\n  prod:\n    docker_hosts:\n"
        f"      local: unix:///var/run/docker.sock\n    services:\n{services}"
    )
    return {
        "DATABASE_URL": database_url,
        "AGENT_DRY_RUN": "true",
        "AGENT_CONFIG_DIR": str(REPO_ROOT / "config"),
        "AGENT_ENVIRONMENTS_FILE": str(environments),
        "AGENT_DATA_DIR": str(tmp),
        "DB_POOL_MAX": str(POOL_MAX),
        "AGENT_WORKERS": str(workers),
    }


# --- the bare graph ---------------------------------------------------------------------------


class BareState(TypedDict, total=False):
    thread_id: str
    request: dict[str, Any]
    plan: dict[str, Any]
    assessment: dict[str, Any]
    decision: dict[str, Any]
    results: list[dict[str, Any]]
    verification: list[dict[str, Any]]
    status: str


async def _intake(state: BareState) -> dict[str, Any]:
    return {"request": {**RESTART_ON_PROD, "target": "web"}}


async def _plan(state: BareState) -> dict[str, Any]:
    return {"plan": {"steps": [{**state["request"], "params": {}}]}}


async def _assess(state: BareState) -> dict[str, Any]:
    return {"assessment": {"tier": "high", "reasons": ["changes production"]}}


def _gate(state: BareState) -> dict[str, Any]:
    return {"decision": interrupt({"thread_id": state["thread_id"]})}


async def _claim_targets(state: BareState) -> dict[str, Any]:
    return {"status": "owned"}


async def _investigate(state: BareState) -> dict[str, Any]:
    return {"status": "investigated"}


async def _request_approval(state: BareState) -> dict[str, Any]:
    return {"status": "awaiting_approval"}


async def _execute(state: BareState) -> dict[str, Any]:
    return {"results": [{"status": "ok", **state["request"]}]}  # the no-op executor


async def _verify(state: BareState) -> dict[str, Any]:
    return {"verification": [{"passed": True}]}


async def _report(state: BareState) -> dict[str, Any]:
    return {"status": "completed"}


BareGraph = CompiledStateGraph[BareState, None, BareState, BareState]


SEVEN_NODES = (_intake, _plan, _assess, _gate, _execute, _verify, _report)
# The service's graph on an approval's path: claim_targets, investigate and request_approval too.
TEN_NODES = (_intake, _plan, _assess, _claim_targets, _investigate, _request_approval, _gate,
             _execute, _verify, _report)  # fmt: skip
POOLED_TEN = "1 `PooledPostgresSaver`, the service's 10 nodes"


def _bare_graph(saver: AsyncPostgresSaver, nodes: Sequence[Any] = SEVEN_NODES) -> BareGraph:
    graph = StateGraph(BareState)
    previous = START
    for node in nodes:
        name = node.__name__.lstrip("_")
        graph.add_node(name, node)
        graph.add_edge(previous, name)
        previous = name
    graph.add_edge(previous, END)
    return graph.compile(checkpointer=saver)


async def _bare_workflow(graphs: list[BareGraph]) -> None:
    thread_id = uuid.uuid4().hex
    graph = graphs[hash(thread_id) % len(graphs)]  # one saver instance per thread
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    await graph.ainvoke({"thread_id": thread_id}, config, durability="sync")
    done = await graph.ainvoke(Command(resume={"outcome": "approved"}), config, durability="sync")
    if done.get("status") != "completed":
        raise RuntimeError(f"bare thread {thread_id} ended {done}")


class TimedLock(asyncio.Lock):
    """The stock saver's lock, counting how long queries waited for it and held it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited_s = self.held_s = self._since = 0.0
        self.acquisitions = 0

    async def acquire(self) -> Literal[True]:
        asked = time.perf_counter()
        await super().acquire()
        self._since = time.perf_counter()
        self.waited_s += self._since - asked
        self.acquisitions += 1
        return True

    def release(self) -> None:
        self.held_s += time.perf_counter() - self._since
        super().release()


@dataclass
class Layout:
    label: str
    graphs: list[BareGraph]
    locks: list[TimedLock]


def _layouts(pool: Pool, savers: int) -> list[Layout]:
    def stock(count: int, label: str) -> Layout:
        locks = [TimedLock() for _ in range(count)]
        graphs = []
        for lock in locks:
            saver = AsyncPostgresSaver(conn=pool)
            saver.lock = lock
            graphs.append(_bare_graph(saver))
        return Layout(label, graphs, locks)

    pooled = _bare_graph(PooledPostgresSaver(pool))
    return [
        stock(1, "1 `AsyncPostgresSaver` (stock)"),
        stock(savers, f"{savers} `AsyncPostgresSaver`s, one per thread-id hash"),
        Layout(POOLED, [pooled], []),
        Layout(POOLED_TEN, [_bare_graph(PooledPostgresSaver(pool), TEN_NODES)], []),
    ]


# --- runs --------------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    concurrency: int
    workflows: int
    wall_s: float
    locks: int = 0
    lock_waited_s: float = 0.0
    lock_held_s: float = 0.0
    lock_acquisitions: int = 0

    @property
    def rate(self) -> float:
        return self.workflows / self.wall_s


@dataclass
class Results:
    runs: list[Run] = field(default_factory=list)
    api: dict[str, list[ApiWorkflow]] = field(default_factory=dict)
    commits: dict[str, float] = field(default_factory=dict)  # per workflow, by database
    listing: dict[str, Any] = field(default_factory=dict)


async def _bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], *, concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(job) for job in jobs))


async def _timed(
    label: str, job: Callable[[], Awaitable[Any]], *, n: int, concurrency: int,
    locks: Sequence[TimedLock] = (),
) -> tuple[Run, list[Any]]:  # fmt: skip
    before = [(lock.waited_s, lock.held_s, lock.acquisitions) for lock in locks]
    started = time.perf_counter()
    outcomes = await _bounded([job] * n, concurrency=concurrency)
    run = Run(label, concurrency, n, time.perf_counter() - started, locks=len(locks))
    for lock, (waited, held, acquisitions) in zip(locks, before, strict=True):
        run.lock_waited_s += lock.waited_s - waited
        run.lock_held_s += lock.held_s - held
        run.lock_acquisitions += lock.acquisitions - acquisitions
    return run, outcomes


async def _benchmark(args: argparse.Namespace, *, urls: dict[str, str]) -> str:
    facts = _machine_facts(urls["bare"])
    results = Results()
    warm = max(args.concurrency, 16)
    targets = _web_targets(warm + 2 * args.rounds * args.workflows + SINGLE)
    limits = httpx.Limits(max_connections=4 * args.concurrency)
    async with contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-workflows-")))
        clients: dict[str, httpx.AsyncClient] = {}
        for api in (API,):
            folder = tmp / str(len(clients))
            folder.mkdir()
            env = _service_env(urls[api], folder, targets=targets, workers=args.workers)
            service = ServiceProcess(env=env, log_path=folder / "service.log")
            await asyncio.to_thread(service.start)
            stack.callback(service.stop)
            stack.push(partial(_print_log_on_error, service))
            clients[api] = await stack.enter_async_context(
                httpx.AsyncClient(base_url=service.base_url, limits=limits)
            )
        pool = await open_pool(urls["bare"], max_size=POOL_MAX, name="bench-bare")
        stack.push_async_callback(pool.close)
        await AsyncPostgresSaver(conn=pool).setup()
        jobs = {
            api: partial(_api_workflow, client, iter(targets)) for api, client in clients.items()
        }
        layouts = _layouts(pool, args.savers)
        await _rounds(args, results, jobs, layouts, warm=warm, urls=urls)
        _, alone = await _timed(API, jobs[API], n=SINGLE, concurrency=1)
        results.api[SINGLE_LABEL] = alone
        for api, client in clients.items():
            await _fill_decided_at(client, results.api[api])
        await _fill_decided_at(clients[API], alone)
        results.listing = await _listing(clients[API], urls[API], results.api[API], args.pending)
    facts["load average after"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return _render(args, facts, results)


def _print_log_on_error(service: ServiceProcess, kind: type[BaseException] | None, *_: Any) -> None:
    if kind is not None:
        print(f"--- service log ({service.base_url}) ---\n{service.log_tail()}")


async def _rounds(
    args: argparse.Namespace, results: Results,
    api_jobs: Mapping[str, Callable[[], Awaitable[ApiWorkflow]]], layouts: list[Layout], *,
    warm: int, urls: dict[str, str],
) -> None:  # fmt: skip
    """Every configuration runs once per round, so drifting load hits them all alike."""
    n, c = args.workflows, args.concurrency
    for job in api_jobs.values():
        await _timed("warm-up", job, n=warm, concurrency=c)
    for layout in layouts:
        await _timed("warm-up", partial(_bare_workflow, layout.graphs), n=warm, concurrency=c)
    commits = {use: _commits(url) for use, url in urls.items()}
    for round_ in range(args.rounds):
        done = []
        for api, job in api_jobs.items():
            for concurrency in (c, 2 * c):
                run, workflows = await _timed(api, job, n=n, concurrency=concurrency)
                done.append(run)
                if concurrency == c:
                    results.api.setdefault(api, []).extend(workflows)
        for concurrency in (c, 2 * c):
            for layout in layouts:
                bare = partial(_bare_workflow, layout.graphs)
                run, _ = await _timed(
                    layout.label, bare, n=n, concurrency=concurrency, locks=layout.locks
                )
                done.append(run)
        results.runs.extend(done)
        rates = ", ".join(f"{r.label[:12]}@{r.concurrency} {r.rate:.1f}/s" for r in done)
        print(f"round {round_ + 1}/{args.rounds}: {rates}", flush=True)
    for use, url in urls.items():
        is_bare = use == "bare"
        count = sum(
            r.workflows
            for r in results.runs
            if r.label == use or (is_bare and r.label not in api_jobs)
        )
        results.commits[use] = (_commits(url) - commits[use]) / count


def _commits(url: str) -> int:
    """Transactions committed in the database so far (each autocommit statement is one)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


# --- listing pending approvals --------------------------------------------------------------


async def _listing(
    client: httpx.AsyncClient, database_url: str, api: list[ApiWorkflow], pending: int
) -> dict[str, Any]:
    """Seed pending rows copied from a real approval, then page through them over HTTP."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO approval_requests (id, workflow_id, status, risk_level,"
            " required_approvals, allowed_roles, requester, plan, plan_hash, assessment, context,"
            " timeout_outcome, created_at, expires_at, round)"
            " SELECT gen_random_uuid(), 'wf-seed-' || i, 'pending', t.risk_level,"
            " t.required_approvals, t.allowed_roles, t.requester, t.plan, t.plan_hash,"
            " t.assessment, t.context, t.timeout_outcome, now() - make_interval(secs => %s - i),"
            " now() + interval '4 hours', 1"
            " FROM generate_series(1, %s) AS i, approval_requests t WHERE t.id = %s",
            (pending, pending, api[0].approval_id),
        )
        conn.execute("ANALYZE approval_requests")
        plans = {
            (limit, offset): _explain(conn, limit, offset)
            for limit, offset in ((100, 0), (PAGE, 0), (PAGE, pending - PAGE))
        }
        plans["cursor first"] = _explain_keyset(conn, None)
        last_key = conn.execute(
            "SELECT created_at, id FROM approval_requests WHERE status = 'pending'"
            " ORDER BY created_at, id OFFSET %s LIMIT 1",
            (pending - PAGE - 1,),
        ).fetchone()
        plans["cursor last"] = _explain_keyset(conn, last_key)
    pages: dict[int, list[float]] = {}  # offset -> ms, one per pass (full records, offset)
    keyset: dict[int, list[float]] = {}  # page number -> ms, one per pass (summary, cursor)
    served: dict[str, list[float]] = {"keyset": [], "pages": []}  # Server-Timing, every page
    totals: list[float] = []
    keyset_totals: list[float] = []
    sizes: list[int] = []
    summary_sizes: list[int] = []
    for _ in range(3):
        started, seen, cursor, number = time.perf_counter(), 0, None, 0
        while True:
            params: dict[str, Any] = {"limit": PAGE, "view": "summary"}
            if cursor:
                params["after"] = cursor
            rows, ms, size, cursor, server_ms = await _page(client, params)
            if rows:
                keyset.setdefault(number, []).append(ms)
                served["keyset"].append(server_ms)
                summary_sizes.append(size)
            seen, number = seen + len(rows), number + 1
            if not cursor:
                break
        keyset_totals.append((time.perf_counter() - started) * 1000)
        if seen != pending:
            raise RuntimeError(f"listed {seen} pending approvals by cursor, seeded {pending}")
    for _ in range(3):
        started, seen, offset = time.perf_counter(), 0, 0
        while offset == 0 or seen == offset:
            rows, ms, size, _, server_ms = await _page(client, {"limit": PAGE, "offset": offset})
            if rows:  # the empty page that ends the listing counts in the total only
                pages.setdefault(offset, []).append(ms)
                served["pages"].append(server_ms)
                sizes.append(size)
            seen, offset = seen + len(rows), offset + PAGE
        totals.append((time.perf_counter() - started) * 1000)
        if seen != pending:
            raise RuntimeError(f"listed {seen} pending approvals, seeded {pending}")
    first = [(await _page(client, {"limit": 100}))[1] for _ in range(20)]
    return {
        "pages": pages, "totals": totals, "first": first, "plans": plans, "sizes": sizes,
        "keyset": keyset, "keyset_totals": keyset_totals, "summary_sizes": summary_sizes,
        "served": served,
    }  # fmt: skip


async def _page(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> tuple[list[Any], float, int, str | None, float]:
    """The page's rows, the client's ms (the body read, not parsed), its size, the next cursor
    and the server's ms (`Server-Timing`: from the request's arrival to the response's start)."""
    started = time.perf_counter()
    response = await client.get("/approvals/pending", params=params, headers=auth("bob"))
    ms = (time.perf_counter() - started) * 1000
    rows = _expect(response)
    server_ms = float(response.headers["Server-Timing"].split("dur=", 1)[1])
    return rows, ms, len(response.content), response.headers.get("X-Next-Cursor"), server_ms


def _explain_keyset(conn: psycopg.Connection[Any], after: Any) -> str:
    """The summary page's query after `after` (None: the first page)."""
    query, args = pending_query(roles=None, risk_level=None, after=after, summary=True)
    rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query, [*args, PAGE, 0])
    return "\n".join(row[0] for row in rows.fetchall())


def _explain(conn: psycopg.Connection[Any], limit: int, offset: int) -> str:
    query, args = pending_query(roles=None, risk_level=None, after=None, summary=False)
    rows = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query, [*args, limit, offset])
    return "\n".join(row[0] for row in rows.fetchall())


# --- the report ---------------------------------------------------------------------------------


def _machine_facts(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    cpu = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpu if "model name" in line), "?")
    facts = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "cores": f"{os.cpu_count()} ({model})",
        "Python": platform.python_version(),
        "Postgres": str(row[0]) if row else "?",
    }
    facts |= {package: importlib.metadata.version(package) for package in PACKAGES}
    facts["load average before"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return facts


def _pct(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(q / 100 * len(ordered)), 1) - 1]


def _render(args: argparse.Namespace, facts: dict[str, str], results: Results) -> str:
    n, c = args.workflows, args.concurrency
    by: dict[tuple[str, int], list[Run]] = {}
    for run in results.runs:
        by.setdefault((run.label, run.concurrency), []).append(run)
    stock = next(label for label, _ in by if label.startswith("1 `AsyncPostgresSaver`"))

    def rate(runs: list[Run]) -> float:
        return statistics.median(r.rate for r in runs)

    def ratio(concurrency: int, bare: str = POOLED) -> float:
        return rate(by[(API, concurrency)]) / rate(by[(bare, concurrency)])

    lines = [
        "# Approval workflows: throughput, latency, listing",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()) + ".",
        "",
        f"{args.rounds} round(s) of {n} workflows per configuration, every configuration once "
        "per round. API: `python -m agent_orchestrator serve` as a subprocess "
        f"(AGENT_WORKERS={args.workers}: {args.workers} worker process(es)), "
        f"`AGENT_DRY_RUN=true` (in-memory executors), DB_POOL_MAX={POOL_MAX}, its own throwaway "
        f"database, INFO logs to a file; httpx.AsyncClient at concurrency {c} does POST "
        f"/orchestrate (alice) -> POST /approve (bob) -> GET /workflows/{{id}}?wait={WAIT_S}"
        "&answered={approval} (a long poll) until `completed`. "
        "Bare: intake -> plan -> assess -> gate(interrupt) -> execute(no-op) -> verify -> report "
        "(and, in the 10-node row, claim_targets -> investigate -> request_approval before the "
        "gate, as in the service's graph), "
        'invoked, then resumed with `Command(resume=...)`, `durability="sync"`, '
        f"AsyncConnectionPool(max_size={POOL_MAX}) on another throwaway database. Postgres, the "
        "service and the driver share the cores, and other work ran on the machine too (see the "
        "load averages): compare rows of the same round rather than single numbers.",
        "",
        TARGETS_NOTE,
        "",
        "## Workflows per second",
        "",
        "| path | concurrency | N per run | workflows/s per round | median workflows/s "
        "| vs 1 stock saver |",
        "|---|---|---|---|---|---|",
    ]
    for (label, concurrency), runs in by.items():
        name = label if label == API else f"bare graph, {label}"
        lines.append(
            f"| {name} | {concurrency} | {n} | {', '.join(f'{r.rate:.1f}' for r in runs)} "
            f"| **{rate(runs):.1f}** | {rate(runs) / rate(by[(stock, concurrency)]):.2f}x |"
        )
    lines += [
        "",
        f"API / bare graph with 1 `PooledPostgresSaver` (the saver the service uses): "
        f"**{ratio(c):.2f}** at concurrency {c}, **{ratio(2 * c):.2f}** at {2 * c}; against "
        f"the same saver with the service's 10 nodes: **{ratio(c, POOLED_TEN):.2f}** at {c}, "
        f"**{ratio(2 * c, POOLED_TEN):.2f}** at {2 * c}.",
        "",
        "Postgres transactions committed per workflow (pg_stat_database, all rounds): "
        + ", ".join(f"{use} {count:.0f}" for use, count in results.commits.items())
        + " (the API's include its GET /workflows polls; each checkpoint query is one).",
        "",
        *_lock_lines(by),
        *_latency_lines(results.api),
        *_listing_lines(results.listing, args.pending),
        _headline(ratio(c), c, results),
    ]
    return "\n".join(lines) + "\n"


def _headline(ratio: float, concurrency: int, results: Results) -> str:
    alone = _server_latencies(results.api[SINGLE_LABEL])
    pages = results.listing["served"]["keyset"]  # server time, what the goal bounds
    return (
        f"api/bare {ratio:.2f} at {concurrency}; approve->exec p50 {_pct(alone, 50):.1f} ms "
        f"p99 {_pct(alone, 99):.1f} ms (1 in flight); page p99 {_pct(pages, 99):.1f} ms"
    )


def _server_latencies(runs: list[ApiWorkflow]) -> list[float]:
    return [(r.executing_at - r.decided_at).total_seconds() * 1000 for r in runs if r.decided_at]


def _lock_lines(by: dict[tuple[str, int], list[Run]]) -> list[str]:
    lines = [
        "## The stock saver's lock",
        "",
        "`AsyncPostgresSaver.lock` replaced by a counting `asyncio.Lock` (all rounds):",
        "",
        "| saver layout | concurrency | lock acquisitions per workflow | each lock held, % of "
        "wall | mean wait for the lock ms |",
        "|---|---|---|---|---|",
    ]
    for (label, concurrency), runs in by.items():
        acquired = sum(r.lock_acquisitions for r in runs)
        if not acquired:
            continue
        held = sum(r.lock_held_s for r in runs) / sum(r.wall_s * r.locks for r in runs)
        waited = sum(r.lock_waited_s for r in runs) / acquired
        lines.append(
            f"| {label} | {concurrency} | {acquired / sum(r.workflows for r in runs):.1f} "
            f"| {held:.0%} | {waited * 1000:.1f} |"
        )
    return [*lines, ""]


def _latency_lines(apis: dict[str, list[ApiWorkflow]]) -> list[str]:
    def row(api: str, label: str, samples: list[float]) -> str:
        return (
            f"| {api} | {label} | {len(samples)} | {_pct(samples, 50):.1f} "
            f"| {_pct(samples, 99):.1f} | {max(samples):.1f} |"
        )

    lines = [
        "## Approve -> execution start (API runs, under their load)",
        "",
        "| service | latency | n | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|",
    ]
    for api, runs in apis.items():
        server = _server_latencies(runs)
        lines.append(row(api, "server: `executing` created_at - approval decided_at", server))
        lines.append(row(api, "client: POST /approve until 202", [r.ack_ms for r in runs]))
    return [
        *lines,
        "",
        "Both server timestamps are Postgres `now()` (decided_at: the start of the decision's "
        "transaction), so no clock skew enters.",
        "",
    ]


def _listing_lines(listing: dict[str, Any], pending: int) -> list[str]:
    pages, first, plans, keyset, served = (
        listing[k] for k in ("pages", "first", "plans", "keyset", "served")
    )
    every = [ms for times in pages.values() for ms in times]
    every_keyset = [ms for times in keyset.values() for ms in times]
    last, last_keyset = max(pages), max(keyset)

    def row(request: str, samples: list[float], total: str, plan: str | None) -> str:
        postgres = (_execution_ms(plan), _plan_summary(plan)) if plan else ("-", "-")
        return (
            f"| {request} | {len(samples)} | {_pct(samples, 50):.1f} | {_pct(samples, 99):.1f} "
            f"| {max(samples):.1f} | {total} | {postgres[0]} | {postgres[1]} |"
        )

    lines = [
        f"## Listing {pending:,} pending approvals",
        "",
        f"{pending:,} pending rows seeded with SQL (copies of a real approval's plan, assessment "
        "and context; `ANALYZE` after), read by bob over HTTP one request at a time: 3 passes "
        f"over all pages by cursor (`view=summary&after=<X-Next-Cursor>`), 3 passes by offset "
        f"(full records, what older clients ask for), then the first 100 twenty times. A "
        f"{PAGE}-row page is {statistics.median(listing['summary_sizes']) / 1e6:.2f} MB of JSON "
        f"as summaries, {statistics.median(listing['sizes']) / 1e6:.2f} MB as full records. "
        "Times run from sending the request to having the whole body (localhost), before the "
        "client parses it, so they bound the server's time from above; the `server` rows are "
        "the service's own `Server-Timing` of the same requests (arrival to response start).",
        "",
        "| request | requests | p50 ms | p99 ms | max ms | all pages ms (median pass) "
        "| Postgres ms (EXPLAIN ANALYZE) | Postgres plan |",
        "|---|---|---|---|---|---|---|---|",
        row(
            f"summary, `limit={PAGE}&after=`, every page", every_keyset,
            f"{statistics.median(listing['keyset_totals']):.0f}", None,
        ),
        row("summary, every page, server time", served["keyset"], "-", None),
        row("summary, first page", keyset[0], "-", plans["cursor first"]),
        row("summary, last page", keyset[last_keyset], "-", plans["cursor last"]),
        row(
            f"full, `limit={PAGE}&offset=`, every page", every,
            f"{statistics.median(listing['totals']):.0f}", None,
        ),
        row("full, every page, server time", served["pages"], "-", None),
        row(f"full, `limit={PAGE}&offset=0`", pages[0], "-", plans[(PAGE, 0)]),
        row(f"full, `limit={PAGE}&offset={last}`", pages[last], "-", plans[(PAGE, last)]),
        row("full, `limit=100` (first page)", first, "-", plans[(100, 0)]),
        "",
        "Votes are counted by one grouped join over the page's ids. The full records' HTTP "
        "time beyond Postgres's is building an `ApprovalRecord` per row (plan, assessment, "
        "context) and serializing it, plus the client parsing it.",
        "",
    ]  # fmt: skip
    for key, plan in plans.items():
        lines += [f"`EXPLAIN (ANALYZE, BUFFERS)`, {key}:", "", "```", plan, "```", ""]
    return lines


def _plan_summary(plan: str) -> str:
    """What the list query's plan does, in a few words."""
    scan = "seq scan" if "Seq Scan on approval_requests" in plan else "index scan"
    parts = [f"{scan} of approval_requests"]
    if re.search(r"Sort Key: r\.created_at", plan):
        parts.append("sort of every pending row")
    votes = re.search(r"Index (?:Only )?Scan using \w+ on approval_actions.*loops=(\d+)\)", plan)
    if votes and int(votes.group(1)) > 1:
        parts.append(f"votes counted per row ({int(votes.group(1)):,} index scans)")
    elif "approval_actions" in plan:
        parts.append("votes counted once for the page")
    return "; ".join(parts)


def _execution_ms(plan: str) -> str:
    line = next((row for row in plan.splitlines() if row.startswith("Execution Time")), "")
    return line.removeprefix("Execution Time: ").removesuffix(" ms") or "?"


if __name__ == "__main__":
    main()
