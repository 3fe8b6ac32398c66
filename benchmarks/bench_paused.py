"""10,000 workflows paused at their approval gate: the service's memory after start-up, how long
start-up takes (migrations, then until /ready answers 200 and the first sweep with its recovery
reads has finished) and how long one sweeper pass takes.

Run with `python -m benchmarks.bench_paused [--paused N] [--sample S]`; writes
benchmarks/results/paused.md. A sample of S workflows pauses through the real service
(POST /orchestrate); the rest are copies of those, made in SQL row for row (workflow, timeline,
approval request and its audit row, target lease, LangGraph checkpoints, blobs and writes) with
fresh workflow, approval and request ids, so each copy is what the service itself would have
left: the approval id is the one `request_approval` derives, and one copy is approved at the
end and must complete. Each copy's lease names a target of its own (`seed-NNNNN`): the lease
table holds a row per paused workflow, as it would with that many distinct targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

from agent_orchestrator.runtime import start_runtime, sweep_once
from benchmarks.bench_workflows import (
    DEFAULT_ADMIN_URL,
    RESTART_ON_PROD,
    _bounded,
    _expect,
    _pct,
    _service_env,
    _web_targets,
)
from graphs.nodes import APPROVAL_NAMESPACE
from shared.lib.config import load_agent_config
from shared.lib.db.database import open_database
from shared.lib.settings import load_settings
from tests.helpers import auth
from tests.testbed.postgres import PostgresServer
from tests.testbed.service import ServiceProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "paused.md"
# The tables one paused workflow has rows in, and the column that names it.
WORKFLOW_TABLES = (
    ("workflows", "id"),
    ("workflow_events", "workflow_id"),
    ("approval_requests", "workflow_id"),
    ("approval_actions", "workflow_id"),
    ("target_leases", "workflow_id"),
    ("checkpoints", "thread_id"),
    ("checkpoint_blobs", "thread_id"),
    ("checkpoint_writes", "thread_id"),
)
COPY_BATCH = 1000
POLL_S = 0.02
GOALS = {"rss_mb": 250.0, "ready_s": 5.0, "sweep_ms": 200.0}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paused", type=int, default=10_000, help="paused workflows in all")
    parser.add_argument("--sample", type=int, default=100, help="paused through the service")
    parser.add_argument("--starts", type=int, default=3, help="service starts measured")
    parser.add_argument("--sweeps", type=int, default=30, help="sweeper passes measured")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    server = PostgresServer(admin_url=os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL)
    urls: list[str] = []
    try:
        urls += [server.create_database("bench"), server.create_database("bench")]
        report = asyncio.run(_benchmark(args, seeded_url=urls[0], empty_url=urls[1]))
    finally:
        for url in urls:
            server.drop_database(url)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)


async def _benchmark(args: argparse.Namespace, *, seeded_url: str, empty_url: str) -> str:
    facts = {
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "cores": str(os.cpu_count()),
        "load average before": _load(),
    }
    targets = _web_targets(args.sample)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-paused-") as folder:
        tmp = Path(folder)
        env = _service_env(seeded_url, tmp, targets=targets)
        started = time.perf_counter()
        with _service(env, tmp) as service:
            async with httpx.AsyncClient(base_url=service.base_url) as client:
                jobs = [partial(_pause_one, client, target) for target in targets]
                paused = await _bounded(jobs, concurrency=8)
        figures["sample_s"] = time.perf_counter() - started
        started = time.perf_counter()
        copies = _copy_paused(seeded_url, [wf for wf, _ in paused], args.paused - args.sample)
        figures["copy_s"] = time.perf_counter() - started
        figures["rows"] = _row_counts(seeded_url)
        figures["empty"] = _start_figures(_service_env(empty_url, tmp, targets=targets), tmp)
        figures["starts"] = [_start_figures(env, tmp) for _ in range(args.starts)]
        figures["sweeps"] = await _sweep_passes(env, args.sweeps)
        figures["plans"] = _sweep_plans(seeded_url)
        with _service(env, tmp) as service:
            figures["copy_completed"] = await _approve_copy(service.base_url, copies[-1])
    facts["load average after"] = _load()
    return _render(args, facts, figures)


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def _service(env: dict[str, str], tmp: Path) -> Iterator[ServiceProcess]:
    service = ServiceProcess(env=env, log_path=tmp / "service.log").start()
    try:
        yield service
    finally:
        service.stop()


async def _pause_one(client: httpx.AsyncClient, target: str) -> tuple[str, str]:
    request = {**RESTART_ON_PROD, "target": target}
    started = _expect(await client.post("/orchestrate", json=request, headers=auth("alice")), 201)
    if started["status"] != "awaiting_approval":
        raise RuntimeError(f"expected a pause for approval, got {started}")
    return started["workflow_id"], started["approval_id"]


# --- copies in SQL ------------------------------------------------------------------------------


def _copy_paused(url: str, templates: list[str], count: int) -> list[tuple[str, str]]:
    """`count` copies of the template workflows (round robin); their (workflow, approval) ids."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT w.id, w.request_id, r.id, r.round, r.plan_hash FROM workflows w"
            " JOIN approval_requests r ON r.id = w.approval_id WHERE w.id = ANY(%s)",
            (templates,),
        ).fetchall()
        template = {row[0]: row[1:] for row in rows}
        conn.execute(
            "CREATE TEMP TABLE seed_map (n int, template text, wf text, old_approval text,"
            " approval text, old_request text, request text, lease_target text)"
        )
        mapping = []
        with conn.cursor().copy("COPY seed_map FROM STDIN") as copy:
            for n in range(count):
                source = templates[n % len(templates)]
                request_id, approval_id, round_, plan_hash = template[source]
                workflow_id = f"wf-{uuid.uuid4().hex[:16]}"
                approval = uuid.uuid5(APPROVAL_NAMESPACE, f"{workflow_id}:{round_}:{plan_hash}")
                copy.write_row((
                    n, source, workflow_id, str(approval_id), str(approval), request_id,
                    uuid.uuid4().hex, f"seed-{n:05d}",
                ))  # fmt: skip
                mapping.append((workflow_id, str(approval)))
        conn.execute("CREATE INDEX ON seed_map (n)")
        for start in range(0, count, COPY_BATCH):
            with conn.transaction():
                for table, column in WORKFLOW_TABLES:
                    conn.execute(_copy_statement(conn, table, column), (start, start + COPY_BATCH))
        conn.execute("ANALYZE")
    return mapping


def _copy_statement(conn: psycopg.Connection[Any], table: str, column: str) -> sql.Composed:
    """Copy a table's rows of each template, every id replaced in the row's JSON text: as
    text in text and JSON columns, as hex in bytea columns (LangGraph's msgpack blobs; the
    ids keep their length, so the msgpack stays valid). Serial ids are left to their default."""
    columns = [
        name
        for name, default in conn.execute(
            "SELECT column_name, column_default FROM information_schema.columns"
            " WHERE table_name = %s AND table_schema = 'public' ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        if not (default or "").startswith("nextval(")
    ]
    text = sql.SQL("to_jsonb(t)::text")
    for old, new in (("template", "wf"), ("old_approval", "approval"), ("old_request", "request")):
        o, n = sql.Identifier("m", old), sql.Identifier("m", new)
        hexed = sql.SQL("encode(convert_to({}, 'UTF8'), 'hex')")
        text = sql.SQL("replace(replace({}, {}, {}), {}, {})").format(
            text, o, n, hexed.format(o), hexed.format(n)
        )
    row = sql.SQL("jsonb_populate_record(NULL::{}, {}::jsonb)").format(sql.Identifier(table), text)
    if table == "target_leases":  # one target per lease: the primary key is the target
        row = sql.SQL("jsonb_populate_record(NULL::target_leases, {}::jsonb"
                      " || jsonb_build_object('target', m.lease_target))").format(text)  # fmt: skip
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    return sql.SQL(
        "INSERT INTO {table} ({names}) SELECT {picked} FROM {table} t"
        " JOIN seed_map m ON t.{column} = m.template, LATERAL {row} AS r"
        " WHERE m.n >= %s AND m.n < %s"
    ).format(
        table=sql.Identifier(table),
        names=names,
        picked=sql.SQL(", ").join(sql.Identifier("r", c) for c in columns),
        column=sql.Identifier(column),
        row=row,
    )


def _row_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {
            table: int(
                conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                ).fetchone()[0]  # type: ignore[index]
            )
            for table, _ in WORKFLOW_TABLES
        }


# --- start-up ---------------------------------------------------------------------------------


def _start_figures(env: dict[str, str], tmp: Path) -> dict[str, float]:
    """Start the service: seconds until /ready is 200 and until its first sweep (the one with
    the recovery reads) has finished; that sweep's own time; RSS then."""
    service = ServiceProcess(env=env, log_path=tmp / "service.log")
    started = time.perf_counter()
    service.start()  # returns once /ready answered 200
    ready_s = time.perf_counter() - started
    try:
        with httpx.Client(base_url=service.base_url) as client:
            while True:
                sweeper = _sweeper(client)
                if sweeper["detail"].get("runs", 0) >= 1:
                    break
                time.sleep(POLL_S)
        swept_s = time.perf_counter() - started
        assert service.process is not None
        memory = _memory_mb(service.process.pid)
    finally:
        service.stop()
    return {
        "ready_s": ready_s,
        "swept_s": swept_s,
        "first_sweep_ms": float(sweeper["detail"]["last_duration_ms"]),
        **memory,
    }


def _sweeper(client: httpx.Client) -> dict[str, Any]:
    report = _expect(client.get("/status", headers=auth("alice")))
    sweeper = next(c for c in report["components"] if c["name"] == "sweeper")
    if sweeper["state"] == "down":
        raise RuntimeError(f"the sweeper is down: {sweeper['error']}")
    return dict(sweeper)


def _memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB -> MB
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


# --- sweeper passes -----------------------------------------------------------------------------


async def _sweep_passes(env: dict[str, str], passes: int) -> dict[str, list[float]]:
    """The sweeper's pass timed in this process, on a runtime of its own (its sweeper task
    stopped, so the timed passes run alone)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    config = load_agent_config(settings)
    database = await open_database(settings)
    runtime = await start_runtime(settings, database, config)
    times: dict[str, list[float]] = {"expiry only": [], "with recovery reads": []}
    try:
        if runtime.sweeper is not None:  # the timed passes run alone
            runtime.sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runtime.sweeper
            runtime.sweeper = None
        for _ in range(passes):
            for label, recover in (("expiry only", False), ("with recovery reads", True)):
                started = time.perf_counter()
                await sweep_once(runtime, settings, recover=recover)
                times[label].append((time.perf_counter() - started) * 1000)
    finally:
        await runtime.close()
        await database.close()
    return times


def _sweep_plans(url: str) -> dict[str, str]:
    """EXPLAIN ANALYZE of the sweep's reads that scan approvals or workflows."""
    queries = {
        "pending by tier": "SELECT risk_level, count(*) AS n FROM approval_requests"
        " WHERE status = 'pending' AND expires_at > now() GROUP BY risk_level",
        "decided, not resumed": "SELECT r.id FROM approval_requests r"
        " JOIN workflows w ON w.id = r.workflow_id"
        " WHERE r.status IN ('approved', 'rejected', 'expired', 'withdrawn')"
        " AND w.status = 'awaiting_approval' AND w.approval_id = r.id"
        " AND coalesce(r.resumed_at, r.decided_at, r.created_at) < now() - interval '30 s'",
    }
    with psycopg.connect(url) as conn:
        return {
            label: "\n".join(
                str(row[0])
                for row in conn.execute(
                    sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + sql.SQL(query)  # type: ignore[arg-type]
                ).fetchall()
            )
            for label, query in queries.items()
        }


async def _approve_copy(base_url: str, copy: tuple[str, str]) -> str:
    """A copied workflow is a real one: approving it runs it to completion."""
    workflow_id, approval_id = copy
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        _expect(await client.post(f"/approve/{approval_id}", json={}, headers=auth("bob")), 202)
        params: dict[str, Any] = {"wait": 30, "answered": approval_id}
        detail = _expect(
            await client.get(f"/workflows/{workflow_id}", params=params, headers=auth("alice"))
        )
    return str(detail["status"])


# --- the report ---------------------------------------------------------------------------------


def _render(args: argparse.Namespace, facts: dict[str, str], figures: dict[str, Any]) -> str:
    starts, empty, sweeps = figures["starts"], figures["empty"], figures["sweeps"]

    def median(key: str) -> float:
        return statistics.median(start[key] for start in starts)

    def met(value: float, goal: str) -> str:
        return "yes" if value < GOALS[goal] else "no"

    recovery = sweeps["with recovery reads"]
    lines = [
        f"# {args.paused:,} workflows paused at their approval gate",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in facts.items()) + ". Other work may "
        "share the 2 cores; the load averages say how much.",
        "",
        f"{args.sample} workflows paused through the service (POST /orchestrate, concurrency 8: "
        f"{figures['sample_s']:.1f} s), {args.paused - args.sample:,} copied from them in SQL "
        f"({figures['copy_s']:.1f} s); a copy approved at the end ended "
        f"`{figures['copy_completed']}`. Rows: "
        + ", ".join(f"{table} {n:,}" for table, n in figures["rows"].items())
        + ".",
        "",
        "| measurement | empty database (migrations from scratch) | "
        f"{args.paused:,} paused (median of {len(starts)} starts) | each start | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    for key, label, goal, unit in (
        ("ready_s", "start-up: process start until /ready 200", "ready_s", "s"),
        ("swept_s", "start-up: until the first sweep (recovery reads) finished", "ready_s", "s"),
        ("first_sweep_ms", "the first sweep's own time", "sweep_ms", "ms"),
        ("rss_mb", "service RSS after start-up", "rss_mb", "MB"),
        ("peak_rss_mb", "service peak RSS (VmHWM)", "rss_mb", "MB"),
    ):
        value = median(key)
        each = ", ".join(f"{start[key]:.2f}" for start in starts)
        lines.append(
            f"| {label} | {empty[key]:.2f} {unit} | **{value:.2f} {unit}** | {each} "
            f"| < {GOALS[goal]:g} {unit} | {met(value, goal)} |"
        )
    lines += [
        "",
        f"Sweeper pass, {len(recovery)} of each, timed in the benchmark's process on a runtime "
        "of its own (`agent_orchestrator.runtime.sweep_once`):",
        "",
        "| pass | p50 ms | p99 ms | max ms | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    for label, times in sweeps.items():
        p99 = _pct(times, 99)
        lines.append(
            f"| {label} | {_pct(times, 50):.1f} | {p99:.1f} | {max(times):.1f} "
            f"| < {GOALS['sweep_ms']:g} ms | {met(p99, 'sweep_ms')} |"
        )
    lines.append("")
    for label, plan in figures["plans"].items():
        lines += [f"`EXPLAIN (ANALYZE, BUFFERS)`, {label}:", "", "```", plan, "```", ""]
    lines.append(
        f"paused {args.paused}: rss {median('rss_mb'):.0f} MB; ready {median('ready_s'):.2f} s; "
        f"first sweep done {median('swept_s'):.2f} s; sweep p99 {_pct(recovery, 99):.1f} ms"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
